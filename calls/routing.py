"""WebSocket routes: the Twilio media stream."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
