"""HTTP URL routes: the admin and Twilio's webhooks."""

from django.contrib import admin
from django.urls import include, path

from calls.liveview import live_calls

urlpatterns = [
    path("admin/live/", live_calls, name="live-calls"),
    path("admin/", admin.site.urls),
    path("", include("calls.urls")),
]
