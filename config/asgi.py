"""ASGI entry point: Django for HTTP, the media-stream consumer for WebSockets.

Twilio's webhooks (`/twilio/`) go through a handler without Django's
middleware (`calls.frontdoor.handler`): they are signed, and need none of it.
The Twilio WebSocket route is not wrapped in AllowedHostsOriginValidator:
Twilio sends no Origin header. The consumer authenticates each stream itself.
"""

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import re_path  # noqa: E402

from calls.frontdoor.handler import FrontDoorHandler  # noqa: E402
from calls.live.process import ServingProcess, start_process  # noqa: E402
from calls.routing import websocket_urlpatterns  # noqa: E402

# In development the server also serves the admin's static files from the apps, as
# runserver does; in production WhiteNoise's middleware serves the collected
# STATIC_ROOT (or a proxy in front does, see the README).
site_app = ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app

# What the process holds for its calls, started now: the record writer and the
# liveness beat run from here on, whether or not a call ever comes.
start_process()

application = ServingProcess(
    ProtocolTypeRouter(
        {
            "http": URLRouter([re_path(r"^twilio/", FrontDoorHandler()), re_path(r"", site_app)]),
            "websocket": URLRouter(websocket_urlpatterns),
        }
    )
)


def _load_what_calls_use() -> None:
    """Import and build now what the first webhook and call would, lazily, otherwise.

    The first call would import the SDK's Realtime modules (about 230) and build
    its client on the event loop: a 100 ms stall for every call then in progress
    (measured, the first call after a start), such as calls handed over by a
    deploy. Loaded here, they are also frozen below with the rest.
    """
    from django.urls import get_resolver
    from twilio.twiml import voice_response  # noqa: F401

    from calls.live import liveness  # noqa: F401
    from calls.live.config import BridgeConfig
    from calls.live.realtime import load_client
    from calls.review import stored  # noqa: F401

    get_resolver().url_patterns  # noqa: B018 (the URLconf, with the views)
    load_client(BridgeConfig.from_django())


_load_what_calls_use()

# Everything loaded so far (Django, the SDK, the app) lives as long as the
# process: move it out of the collector's sight. A full collection then walks
# only what calls allocate (the tracked objects left after start-up: 22,500
# before the line above, 4,900 with it), and stalls the event loop (and every
# call's audio) for less time. What calls allocate, about 320 objects a call,
# mostly the servers' and asyncio's, still costs a full pass 15-20 ms at 100
# calls and 20-45 ms at 200 on this machine.
gc.freeze()

# The threads beside the event loop (the record writer, the webhooks' and the
# claims' database work) hold the GIL while they run Python: a thread that
# wants it back waits up to the switch interval, 5 ms by default. The event
# loop carries every call's audio and barge-ins: make that wait 1 ms at most.
sys.setswitchinterval(0.001)
