"""WebSocket routes: the Twilio media stream."""

from django.urls import path

from calls.consumers import MediaStreamConsumer

websocket_urlpatterns = [
    path("twilio/media-stream/", MediaStreamConsumer.as_asgi()),
]
