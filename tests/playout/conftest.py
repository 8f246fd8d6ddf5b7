"""The playout tests are pure: they need no Django settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _twilio_settings() -> None:
    """Shadows the project-wide autouse fixture, which needs pytest-django's `settings`."""
