"""Shared fixtures: Twilio signing with the test auth token."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from tests.callbridge import configure

TEST_AUTH_TOKEN = "test-auth-token-0123456789abcdef"
TEST_PUBLIC_BASE_URL = "https://calls.example.test"


@pytest.fixture(scope="session", autouse=True)
def _channel_layer_of_this_worker() -> None:
    """Under pytest-xdist (`make test`), a worker's Redis channel layer keeps its keys
    under a prefix of its own: its groups (the live view's) never meet those of a test
    run beside it."""
    from django.conf import settings

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    layer = settings.CHANNEL_LAYERS["default"]
    if worker and layer["BACKEND"].startswith("channels_redis."):
        layer["CONFIG"] = {**layer.get("CONFIG", {}), "prefix": f"asgi-{worker}"}


@pytest.fixture(autouse=True)
def _twilio_settings(settings: Any) -> None:
    configure(
        settings,
        TWILIO_AUTH_TOKEN=TEST_AUTH_TOKEN,
        PUBLIC_BASE_URL=TEST_PUBLIC_BASE_URL,
        TWILIO_ACCOUNT_SID="",
    )


@pytest.fixture(autouse=True)
def call_process(settings: Any) -> Any:
    """A process root of each test's own (`calls.live.process`), made current.

    A webhook served through ASGI opens its call's model session ahead only in
    tests that ask for it (`MODEL_PREOPEN_S`, then `process.preopened`); none is
    left for the next test. Its beat does not run unless a test starts it.
    """
    from calls.live.process import CallProcess, ProcessConfig, use_process

    configure(settings, MODEL_PREOPEN_S=0)
    process = CallProcess(ProcessConfig.from_django())
    previous = use_process(process)
    yield process
    process.preopened.discard_all()
    process.stop()
    use_process(previous)


def twilio_signature(url: str, params: Mapping[str, str]) -> str:
    return RequestValidator(TEST_AUTH_TOKEN).compute_signature(url, dict(params))
