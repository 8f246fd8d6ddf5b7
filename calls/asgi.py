"""The platform in the host's ASGI application: a ready router, or the routes to compose.

Two lines in the host's `asgi.py`, after Django's own application is built:

    django_asgi_app = get_asgi_application()

    from calls.asgi import callbridge_application

    application = callbridge_application(django_asgi_app)

It serves Twilio's webhooks by the front door (no middleware), the media
stream outside any Origin check (Twilio sends none), the staff live view
inside the session's authentication and the Origin check, everything else
by `django_asgi_app`; and it starts the process's call root (the record
writer, the liveness beat) and runs it from the server's start (lifespan,
or the first connection under Daphne).

A host with its own router mounts `calls.routing`'s lists instead
(`media_stream_routes()`, `staff_routes()`, optionally `front_door_routes()`)
and wraps its application in `serving(...)`. Process tuning is a separate,
explicit call (`tune_process()`), never a side effect of an import.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, re_path

from calls.conf import callbridge_settings
from calls.live.process import ServingProcess, start_process
from calls.routing import front_door_routes, media_stream_routes, staff_routes


def serving(app: Any) -> ServingProcess:
    """`app`, with the process's call root started now and run from the server's start.

    The platform's settings are validated first: a server with a setting wrong
    or missing refuses to start (`ImproperlyConfigured`, naming each problem by
    its check id), since ASGI servers run no system checks.
    """
    callbridge_settings()
    start_process()
    return ServingProcess(app)


def callbridge_application(django_asgi_app: Any, *, front_door: bool = True) -> ServingProcess:
    """The host's whole ASGI application: the platform's routes, then Django's.

    `front_door=False` sends Twilio's webhooks through the host's middleware.
    """
    try:
        http = [*front_door_routes(), re_path(r"", django_asgi_app)] if front_door else None
    except NoReverseMatch as missing:
        raise ImproperlyConfigured(
            "Twilio's webhooks are not routed: add path('', include('calls.urls')) to the URLconf"
        ) from missing
    return serving(
        ProtocolTypeRouter(
            {
                "http": URLRouter(http) if http else django_asgi_app,
                "websocket": URLRouter(
                    [
                        *media_stream_routes(),
                        re_path(
                            r"",
                            AllowedHostsOriginValidator(
                                AuthMiddlewareStack(URLRouter(staff_routes()))
                            ),
                        ),
                    ]
                ),
            }
        )
    )


def tune_process() -> None:
    """Load now what calls use, freeze the heap, shorten the GIL's switch interval.

    Call it once, last in the host's `asgi.py`:

    - The first call would import the SDK's Realtime modules (about 230) and
      build its client on the event loop: a 100 ms stall for every call then
      in progress (measured: the first call after a start, such as calls
      handed over by a deploy).
    - Everything loaded by then lives as long as the process: `gc.freeze()`
      moves it out of the collector's sight, so a full collection walks only
      what calls allocate (4,900 tracked objects left after start-up instead
      of 22,500) and stalls the event loop, and every call's audio, less.
    - The threads beside the event loop (the record writer, the database
      work) hold the GIL while they run Python, and a thread that wants it
      back waits up to the switch interval, 5 ms by default; the event loop
      carries every call's audio and barge-ins: 1 ms at most.
    """
    from django.urls import get_resolver
    from twilio.twiml import voice_response  # noqa: F401

    from calls.live import liveness  # noqa: F401
    from calls.live.config import BridgeConfig
    from calls.live.realtime import load_client
    from calls.review import stored  # noqa: F401

    get_resolver().url_patterns  # noqa: B018 (the URLconf, with the views)
    load_client(BridgeConfig.from_django())
    gc.freeze()
    sys.setswitchinterval(0.001)
