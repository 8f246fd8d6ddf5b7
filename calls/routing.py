"""WebSocket routes: the Twilio media stream, and the staff live view."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from calls.consumers import LiveViewConsumer, MediaStreamConsumer

websocket_urlpatterns = [
    # Twilio sends no Origin header and no cookie: the consumer authenticates the stream.
    path("twilio/media-stream/", MediaStreamConsumer.as_asgi()),
    # A browser page: same-origin only, Django's session says who it is.
    path(
        "admin/live/ws/",
        AllowedHostsOriginValidator(AuthMiddlewareStack(LiveViewConsumer.as_asgi())),
    ),
]
