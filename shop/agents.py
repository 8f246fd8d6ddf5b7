"""The shop's agents: a caller the shop knows gets the orders agent, by their phone number."""

from __future__ import annotations

from calls.agents import Agent, AgentHooks, CallInfo
from shop.models import Customer

# Where the AI may put a caller through (Twilio dials it once the handoff line played).
BILLING_DESK = "+15005550100"


class ShopHooks(AgentHooks):
    def agent_for_call(self, call: CallInfo, default: Agent) -> Agent | None:
        customer = Customer.objects.filter(phone=call.from_number).first()
        if customer is None:
            return None  # a stranger: the default agent
        return Agent(
            name="orders",
            instructions=(
                f"You are the shop's phone assistant, speaking with {customer.name}. "
                "Help with their orders: look an order up with order_status, and tell "
                "when the courier comes with delivery_estimate. For billing questions, "
                "say you are putting them through and call transfer_call with the "
                "target billing. Keep answers short. When they are done, say goodbye "
                "and call end_call."
            ),
            greeting=f"Hello {customer.name}, thanks for calling the shop. How can I help?",
            tools=("order_status", "delivery_estimate"),
            transfer_targets={"billing": BILLING_DESK},
        )
