"""HTTP URL routes of the reference host: the admin (with the calls' review and live view)
and Twilio's webhooks."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("calls.urls")),
]
