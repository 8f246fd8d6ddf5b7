"""HTTP URL routes: the admin and Twilio's webhooks."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("calls.urls")),
]
