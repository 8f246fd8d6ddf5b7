"""The calls app: call records, Twilio's front door, and the media stream."""

from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"
