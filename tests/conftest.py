"""Shared fixtures: Twilio signing with the test auth token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

TEST_AUTH_TOKEN = "test-auth-token-0123456789abcdef"
TEST_PUBLIC_BASE_URL = "https://calls.example.test"


@pytest.fixture(autouse=True)
def _twilio_settings(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = TEST_AUTH_TOKEN
    settings.PUBLIC_BASE_URL = TEST_PUBLIC_BASE_URL
    settings.TWILIO_ACCOUNT_SID = ""


@pytest.fixture(autouse=True)
def _no_model_sessions_opened_ahead(settings: Any) -> Any:
    """A webhook served through ASGI opens its call's model session ahead only in
    tests that ask for it (`calls.live.preopen`); none is left for the next test."""
    settings.MODEL_PREOPEN_S = 0
    yield
    from calls.live import preopen

    preopen.discard_all()


def twilio_signature(url: str, params: Mapping[str, str]) -> str:
    return RequestValidator(TEST_AUTH_TOKEN).compute_signature(url, dict(params))


@pytest.fixture(autouse=True, scope="session")
def _record_writer_closed_at_the_end(django_db_setup: Any) -> Any:
    """The process's record writer keeps a connection; it must be gone before the
    test database is dropped (this fixture is torn down first: it depends on it)."""
    yield
    from calls.live.db import close_connections
    from calls.live.writer import record_writer

    record_writer().close()
    close_connections()
