"""`manage.py seed_shop`: the demo's customers and orders (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from shop.models import Customer, Order

# The demo's callers (`simulators.scenarios`: the tool and transfer calls come from it).
DEMO_CUSTOMER = ("Ada", "+15005550042")


class Command(BaseCommand):
    help = "Create the demo's customer and orders, once."

    def handle(self, *args: Any, **options: Any) -> None:
        name, phone = DEMO_CUSTOMER
        customer, created = Customer.objects.get_or_create(phone=phone, defaults={"name": name})
        Order.objects.get_or_create(
            number="1042",
            defaults={"customer": customer, "item": "a blue teapot", "status": "shipped"},
        )
        self.stdout.write(f"demo customer {'created' if created else 'already there'}: {phone}")
