"""HTTP URL routes: the admin and Twilio's webhooks."""

from django.contrib import admin
from django.urls import include, path

from calls.liveview import end_live_call, live_calls, live_calls_json

urlpatterns = [
    path("admin/live/", live_calls, name="live-calls"),
    path("admin/live/calls.json", live_calls_json, name="live-calls-json"),
    path("admin/live/end/<str:call_sid>/", end_live_call, name="live-end-call"),
    path("admin/", admin.site.urls),
    path("", include("calls.urls")),
]
