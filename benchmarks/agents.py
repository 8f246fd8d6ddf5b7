"""The benchmark server's hooks and tools (`AGENT_HOOKS=benchmarks.agents.BenchHooks`).

Every call gets an agent with two tools that say when they ran, on the one
clock every process of the machine shares (`time.monotonic()`, CLOCK_MONOTONIC):
the benchmark compares those times with when the Realtime stand-in sent the
call's arguments and received its result, so the dispatch figures come from
evidence the server does not write.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from calls.agents import Agent, AgentHooks, CallInfo
from calls.models import CallSession
from calls.tools import CallContext, tool

# The tools' own work: about this long (a query, an API).
WORK_S = 0.02


class BenchHooks(AgentHooks):
    def agent_for_call(self, call: CallInfo, default: Agent) -> Agent | None:
        return Agent(name="bench", tools=("bench_lookup", "bench_lookup_async"))


@tool
def bench_lookup(order_number: str, call: CallContext) -> dict[str, Any]:
    """A sync tool: a query on a tool thread, then the back office's time."""
    started = time.monotonic()
    found = CallSession.objects.filter(call_sid=call.call_sid).exists()
    time.sleep(WORK_S)
    return {"order": order_number, "found": found, "started": started, "returned": time.monotonic()}


@tool
async def bench_lookup_async(order_number: str) -> dict[str, Any]:
    """An async tool: an API awaited on the event loop."""
    started = time.monotonic()
    await asyncio.sleep(WORK_S)
    return {"order": order_number, "started": started, "returned": time.monotonic()}
