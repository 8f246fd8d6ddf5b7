"""The platform's routes in a host's ASGI application."""

from __future__ import annotations

from calls.routing import front_door_routes, webhook_paths


def test_the_front_door_takes_exactly_twilios_three_webhooks() -> None:
    """A host's own view under the same prefix keeps its middleware (CSRF, sessions)."""
    assert webhook_paths() == ["/twilio/voice/", "/twilio/status/", "/twilio/stream-ended/"]
    routes = front_door_routes()
    taken = {
        path
        for path in ("twilio/voice/", "twilio/status/", "twilio/stream-ended/", "twilio/sms/",
                     "twilio/voice/extra/", "twilio/voice", "admin/")
        if any(route.pattern.match(path) for route in routes)
    }  # fmt: skip
    assert taken == {"twilio/voice/", "twilio/status/", "twilio/stream-ended/"}
