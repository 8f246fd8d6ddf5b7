"""The calls app: call records, Twilio's front door, and the media stream."""

from django.apps import AppConfig
from django.core.signals import setting_changed


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls import checks, conf  # noqa: F401 (registers the checks)

        setting_changed.connect(conf.forget, dispatch_uid="callbridge-settings")
