"""HTTP routes Twilio calls."""

from django.urls import path

from calls import views

app_name = "calls"

urlpatterns = [
    path("twilio/voice/", views.voice_webhook, name="voice-webhook"),
    path("twilio/status/", views.status_callback, name="status-callback"),
    path("twilio/stream-ended/", views.stream_ended, name="stream-ended"),
]
