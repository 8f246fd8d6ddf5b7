"""Simulator tests need no Django: neutralise the project's autouse settings fixture."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _twilio_settings() -> None:
    """Shadows the Django-settings fixture of `tests/conftest.py` (runs with `-p no:django`)."""
