"""A small shop: who calls, and what they ordered (the host's own data, not the platform's)."""

from __future__ import annotations

from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=100)
    # As Twilio gives a caller's number: E.164.
    phone = models.CharField(max_length=32, unique=True)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    class Status(models.TextChoices):
        PACKED = "packed", "Packed"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"

    number = models.CharField(max_length=20, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    item = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PACKED)
    postcode = models.CharField(max_length=16, blank=True)

    def __str__(self) -> str:
        return self.number
