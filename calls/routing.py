"""The platform's routes, for the host's ASGI application (`calls.asgi` assembles them).

The media stream is Twilio's: no Origin header, no cookie, so it sits outside
any Origin check (Channels' `AllowedHostsOriginValidator` would refuse every
call) and the consumer authenticates each stream by its signature and token.
The live view is a staff page's socket: same origin, Django's session.
"""

from __future__ import annotations

import re

from django.urls import URLPattern, path, re_path, reverse

from calls.consumers import LiveViewConsumer, MediaStreamConsumer
from calls.paths import LIVE_VIEW_PATH, MEDIA_STREAM_PATH


def media_stream_routes() -> list[URLPattern]:
    """Twilio's WebSocket: mount it outside any Origin check and session middleware."""
    return [path(MEDIA_STREAM_PATH, MediaStreamConsumer.as_asgi())]


def staff_routes() -> list[URLPattern]:
    """The live view's WebSocket: mount it inside `AuthMiddlewareStack` (it needs
    `scope["user"]`) and `AllowedHostsOriginValidator`."""
    return [path(LIVE_VIEW_PATH, LiveViewConsumer.as_asgi())]


#: The names of Twilio's webhooks in `calls.urls`.
WEBHOOKS = ("calls:voice-webhook", "calls:status-callback", "calls:stream-ended")


def webhook_paths() -> list[str]:
    """Where the host's URLconf serves Twilio's webhooks (wherever it includes `calls.urls`)."""
    return [reverse(name) for name in WEBHOOKS]


def front_door_routes() -> list[URLPattern]:
    """Twilio's three webhooks by the front door: Django's views, none of the middleware
    (`calls.frontdoor.handler`). Exactly those paths: anything else of the host's, under
    the same prefix or not, keeps its middleware. Optional: without these routes the
    webhooks go through the host's stack."""
    from calls.frontdoor.handler import FrontDoorHandler

    door = FrontDoorHandler()
    return [re_path(f"^{re.escape(url.lstrip('/'))}$", door) for url in webhook_paths()]
