"""A host's hooks and tools for the end-to-end tests: the server under test imports them
(`AGENT_HOOKS=tests.e2e.agents.Hooks`), as a host project's would be.

The caller's number chooses the agent, and what the hook does: slow, raising,
or an agent with the test tools and a transfer target. The tools write what
they saw to the database, so the test can tell they ran with the ORM.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

from calls import signals
from calls.agents import Agent, AgentHooks, CallInfo
from calls.models import CallSession
from calls.tools import CallContext, ToolError, tool

# Where the server under test writes what its hooks and receivers heard (JSON lines).
EVENTS_PATH_VARIABLE = "E2E_EVENTS_PATH"

TOOLS_AGENT = "+15550000001"  # the agent with the tools and the transfer
SLOW_HOOK = "+15550000002"  # the hook takes longer than its bound
RAISING_HOOK = "+15550000003"  # the hook raises
HOOK_SLEEP_S = 5.0
TRANSFER_NUMBER = "+15557770000"
SLOW_TOOL_S = 3.0
MEDIUM_TOOL_S = 1.2

_never = threading.Event()


class Hooks(AgentHooks):
    def __init__(self) -> None:
        # The host's receivers listen in the server under test only (this module is
        # imported by the test process too, for its constants).
        for signal in (
            signals.call_started,
            signals.tool_called,
            signals.call_transferred,
            signals.call_ended,
            signals.barge_in,
        ):
            signal.connect(sync_receiver, dispatch_uid=f"e2e-sync-{id(signal)}")
        signals.call_ended.connect(async_receiver, dispatch_uid="e2e-async")
        signals.call_started.connect(raising_receiver, dispatch_uid="e2e-raising-started")
        signals.call_ended.connect(raising_receiver, dispatch_uid="e2e-raising-ended")

    def agent_for_call(self, call: CallInfo, default: Agent) -> Agent | None:
        if call.from_number == SLOW_HOOK:
            _never.wait(HOOK_SLEEP_S)  # the host's slow lookup
            return Agent(name="too-late")
        if call.from_number == RAISING_HOOK:
            raise RuntimeError("the host's lookup failed")
        if call.from_number != TOOLS_AGENT:
            return None
        # The ORM is available: the hook reads the call's own row.
        known = CallSession.objects.filter(call_sid=call.call_sid).exists()
        return Agent(
            name="tester",
            instructions=f"You test tools (row known: {known}).",
            tools=("order_status", "slow_lookup", "medium_lookup", "broken_tool", "courier_eta"),
            transfer_targets={"billing": TRANSFER_NUMBER},
        )

    def redact_tool_arguments(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        shown = super().redact_tool_arguments(name, arguments)
        if "postcode" in shown:
            shown["postcode"] = "[hidden by the host]"
        return shown

    async def keypad(self, call_sid: str, digits: str) -> None:
        _heard("keypad", call_sid, digits=digits)


def _heard(what: str, call_sid: str, **details: Any) -> None:
    path = os.environ.get(EVENTS_PATH_VARIABLE)
    if path:
        line = json.dumps({"what": what, "call_sid": call_sid, **details}, default=str)
        with open(path, "a", encoding="utf-8") as events:
            events.write(line + "\n")


# A host's receivers: a sync one, an async one, and one with a bug (raises every time).
def sync_receiver(sender: Any, signal: Any, call_sid: str, **kwargs: Any) -> None:
    name = next(key for key, value in vars(signals).items() if value is signal)
    kwargs.pop("call_pk", None)
    _heard(name, call_sid, **kwargs)


async def async_receiver(sender: Any, call_sid: str, end_reason: str, **kwargs: Any) -> None:
    await asyncio.sleep(0)
    _heard("call_ended_async", call_sid, end_reason=end_reason)


def raising_receiver(sender: Any, **kwargs: Any) -> None:
    raise RuntimeError("a host receiver with a bug")


@tool
def order_status(order_number: str, call: CallContext) -> dict[str, Any]:
    """The status of one of the caller's orders."""
    if not order_number.isdigit():
        raise ToolError("order numbers are digits")
    # A sync tool runs on a thread of its own, with the ORM.
    calls = CallSession.objects.filter(call_sid=call.call_sid).count()
    return {"order": order_number, "status": "shipped", "calls_seen": calls}


@tool(timeout_s=10)
def slow_lookup(order_number: str) -> dict[str, str]:
    """A lookup in a slow back office (three seconds)."""
    time.sleep(SLOW_TOOL_S)  # the back office's own time
    return {"order": order_number, "status": "packed"}


@tool
def medium_lookup(order_number: str) -> dict[str, str]:
    """A lookup that takes a little over a second."""
    time.sleep(MEDIUM_TOOL_S)
    return {"order": order_number, "status": "packed"}


@tool
def broken_tool(order_number: str) -> dict[str, str]:
    """A tool with a bug."""
    raise KeyError(order_number)


@tool
async def courier_eta(postcode: str) -> dict[str, str]:
    """When the courier comes (an async tool: the courier's API, on the event loop)."""
    await asyncio.sleep(0)
    return {"postcode": postcode, "eta": "tomorrow"}
