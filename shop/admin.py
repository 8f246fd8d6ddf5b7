from django.contrib import admin

from shop.models import Customer, Order


class OrderInline(admin.TabularInline):
    model = Order
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "phone"]
    search_fields = ["name", "phone"]
    inlines = [OrderInline]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "item", "status"]
    list_filter = ["status"]
    search_fields = ["number"]
