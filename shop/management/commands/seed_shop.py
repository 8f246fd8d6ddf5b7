"""`manage.py seed_shop`: the demo's customers and orders (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from shop.models import Customer, Order
from simulators.scenarios import DEMO_CUSTOMER, DEMO_ORDER

# The demo's caller: the tool and transfer scenarios (`simulators.scenarios`) call from
# this number, and ask about this order.
NAME = "Ada"


class Command(BaseCommand):
    help = "Create the demo's customer and orders, once."

    def handle(self, *args: Any, **options: Any) -> None:
        phone = DEMO_CUSTOMER
        customer, created = Customer.objects.get_or_create(phone=phone, defaults={"name": NAME})
        Order.objects.get_or_create(
            number=DEMO_ORDER,
            defaults={"customer": customer, "item": "a blue teapot", "status": "shipped"},
        )
        self.stdout.write(f"demo customer {'created' if created else 'already there'}: {phone}")
