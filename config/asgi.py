"""ASGI entry point: Django for HTTP, the media-stream consumer for WebSockets.

The Twilio route is not wrapped in AllowedHostsOriginValidator: Twilio sends
no Origin header. The consumer authenticates each stream itself.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from calls.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
