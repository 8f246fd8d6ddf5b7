from django.apps import AppConfig


class ShopConfig(AppConfig):
    """The reference host's own business: customers and orders, and the AI's tools on them."""

    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The tools register themselves when their module is imported.
        from shop import tools  # noqa: F401
