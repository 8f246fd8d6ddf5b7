"""The platform's routes, for the host's ASGI application (`calls.asgi` assembles them).

The media stream is Twilio's: no Origin header, no cookie, so it sits outside
any Origin check (Channels' `AllowedHostsOriginValidator` would refuse every
call) and the consumer authenticates each stream by its signature and token.
The live view is a staff page's socket: same origin, Django's session.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path, reverse

from calls.consumers import LiveViewConsumer, MediaStreamConsumer
from calls.paths import LIVE_VIEW_PATH, MEDIA_STREAM_PATH


def media_stream_routes() -> list[URLPattern]:
    """Twilio's WebSocket: mount it outside any Origin check and session middleware."""
    return [path(MEDIA_STREAM_PATH, MediaStreamConsumer.as_asgi())]


def staff_routes() -> list[URLPattern]:
    """The live view's WebSocket: mount it inside `AuthMiddlewareStack` (it needs
    `scope["user"]`) and `AllowedHostsOriginValidator`."""
    return [path(LIVE_VIEW_PATH, LiveViewConsumer.as_asgi())]


def webhook_prefix() -> str:
    """The path prefix of Twilio's webhooks, wherever the host includes `calls.urls`."""
    voice = reverse("calls:voice-webhook")
    status = reverse("calls:status-callback")
    common = ""
    for a, b in zip(voice, status, strict=False):
        if a != b:
            break
        common += a
    return common[: common.rfind("/") + 1]


def front_door_routes() -> list[Any]:
    """Twilio's webhooks by the front door: Django's views, none of the middleware
    (`calls.frontdoor.handler`). Optional: without it they go through the host's stack."""
    from django.urls import re_path

    from calls.frontdoor.handler import FrontDoorHandler

    return [re_path("^" + webhook_prefix().lstrip("/"), FrontDoorHandler())]
