"""The shop's tools: what the AI may look up while it talks with a caller."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from calls.tools import CallContext, ToolError, tool
from shop.models import Order

# The courier's API answers in about this long (the demo's slow tool).
COURIER_API_S = 2.5


@tool
def order_status(
    order_number: Annotated[str, "The order number the caller reads out."],
    call: CallContext,
) -> dict[str, Any]:
    """The status of one of the caller's orders (sync: the ORM, on a tool thread)."""
    order = (
        Order.objects.select_related("customer")
        .filter(number=order_number, customer__phone=call.from_number)
        .first()
    )
    if order is None:
        raise ToolError("There is no order with that number for this phone.")
    return {"order": order.number, "item": order.item, "status": order.get_status_display()}


@tool(timeout_s=8)
async def delivery_estimate(
    postcode: Annotated[str, "The caller's postcode."],
) -> dict[str, str]:
    """When the courier comes to a postcode (async: the courier's API, awaited).

    An async tool runs on the event loop and must not block it; it must not
    use the async ORM either (that runs on asgiref's one shared thread, which
    the Channels consumers use too): ORM work belongs in a sync tool.
    """
    await asyncio.sleep(COURIER_API_S)  # the courier's API (this example's stand-in)
    return {"postcode": postcode, "courier": "tomorrow between 9 and 12"}
