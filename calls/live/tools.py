"""Running host code for calls: the model's tool calls, and the agent hook at the voice webhook.

One `HostCode` a process (`CallProcess.tools`): the host's hooks instance and
a pool of threads of its own for sync tools and hooks, never the call
path's database threads nor asgiref's thread-sensitive executor (which the
consumers use for every frame), so a slow tool holds up nothing but itself.
Every outcome (a result, a `ToolError`, a crash, a timeout, arguments that
do not fit the schema, a tool the agent may not use) becomes a `ToolResult`
for the model; nothing here raises into a call.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections

from callcore import RunTool, ToolResult
from callcore import tools as outcome
from calls.agents import Agent, AgentHooks, AgentSource, CallInfo, chooses_agents
from calls.tools import CallContext, ToolError, invalid_arguments, parse_arguments, registered_tools

logger = logging.getLogger(__name__)
_now = time.monotonic


class HostCode:
    """The host's hooks, and where its sync code runs (`threads` of them)."""

    def __init__(self, hooks: AgentHooks, threads: int, timeout_s: float) -> None:
        self.hooks = hooks
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="host-code")

    def close(self) -> None:
        """The process is stopping: threads still running host code are not waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- the agent ---------------------------------------------------------------------------

    async def choose_agent(
        self, call: CallInfo, default: Agent, timeout_s: float
    ) -> tuple[Agent, AgentSource]:
        """The call's agent from the hooks, within `timeout_s`; the default if it fails."""
        hooks = self.hooks
        if not chooses_agents(hooks):
            return default, AgentSource.DEFAULT
        try:
            async with asyncio.timeout(timeout_s):
                chosen = await self._call(hooks.agent_for_call, call, default)
        except TimeoutError:
            logger.warning(
                "agent hook took longer than %.2f s: the call gets the default agent", timeout_s
            )
            return default, AgentSource.DEFAULT_AFTER_TIMEOUT
        except Exception:
            logger.exception("agent hook failed: the call gets the default agent")
            return default, AgentSource.DEFAULT_AFTER_ERROR
        if chosen is None:
            return default, AgentSource.DEFAULT
        if not isinstance(chosen, Agent):
            logger.error(
                "agent hook returned a %s, not an Agent or None: the call gets the default agent",
                type(chosen).__name__,
            )
            return default, AgentSource.DEFAULT_AFTER_ERROR
        known = registered_tools()
        unknown = [name for name in chosen.tools if name not in known]
        if unknown:
            logger.warning("agent %s names unregistered tools, left out: %s", chosen.name, unknown)
            chosen = Agent.from_stored(
                {**chosen.stored(), "tools": [n for n in chosen.tools if n in known]}
            )
        return chosen.over(default), AgentSource.HOOK

    # --- tools -------------------------------------------------------------------------------

    async def run_tool(
        self, request: RunTool, context: CallContext, allowed: frozenset[str]
    ) -> ToolResult:
        """Run one of the model's tool calls; its result, whatever happened."""
        tool = registered_tools().get(request.name) if request.name in allowed else None
        if tool is None:
            return _refused(request, outcome.UNKNOWN_TOOL, f"there is no tool named {request.name}")
        arguments = parse_arguments(request.arguments)
        if isinstance(arguments, str):
            return _refused(request, outcome.INVALID_ARGUMENTS, arguments)
        problem = invalid_arguments(tool.parameters, arguments)
        shown = self._redacted(request.name, arguments)
        if problem is not None:
            return _refused(request, outcome.INVALID_ARGUMENTS, problem, shown)
        kwargs = dict(arguments)
        if tool.context_parameter is not None:
            kwargs[tool.context_parameter] = context
        timeout_s = tool.timeout_s or self.timeout_s
        started: float | None = None
        try:
            async with asyncio.timeout(timeout_s):
                if tool.is_async:
                    started = _now()
                    value = await tool.function(**kwargs)
                else:
                    value, started = await self._in_thread(tool.function, kwargs)
        except TimeoutError:
            logger.warning(
                "tool %s took longer than %.1f s: the model is told", tool.name, timeout_s
            )
            error = f"the tool took longer than {timeout_s:g} s"
            return _failed(request, outcome.TIMEOUT, error, shown, started)
        except ToolError as exc:
            logger.info("tool %s refused: %s", tool.name, type(exc).__name__)
            return _failed(request, outcome.ERROR, str(exc), shown, started)
        except Exception:
            logger.exception("tool %s failed: the model is told it did", tool.name)
            return _failed(request, outcome.ERROR, "the tool failed", shown, started)
        returned = _now()
        try:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
        except (TypeError, ValueError):
            logger.exception("tool %s returned what JSON cannot hold", tool.name)
            return _failed(
                request, outcome.ERROR, "the tool's result was unreadable", shown, started
            )
        return ToolResult(request.call_id, outcome.OK, text, shown, returned, started)

    def _redacted(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            shown = self.hooks.redact_tool_arguments(name, dict(arguments))
        except Exception:
            logger.exception(
                "redaction hook failed for tool %s: its arguments are not recorded", name
            )
            return {"redaction_failed": True}
        return shown if isinstance(shown, dict) else {"redacted": True}

    async def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        if inspect.iscoroutinefunction(method):
            return await method(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _with_connections, method, args)

    async def _in_thread(
        self, function: Callable[..., Any], kwargs: dict[str, Any]
    ) -> tuple[Any, float]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _timed, function, kwargs)


def _with_connections(method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Host code with the ORM: stale connections closed before and after, as a request's."""
    close_old_connections()
    try:
        return method(*args)
    finally:
        close_old_connections()


def _timed(function: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any, float]:
    close_old_connections()
    started = _now()
    try:
        return function(**kwargs), started
    finally:
        close_old_connections()


def _refused(
    request: RunTool, what: str, error: str, shown: dict[str, Any] | None = None
) -> ToolResult:
    logger.warning("tool call %s refused: %s", request.name, what)
    return _failed(request, what, error, shown or {}, None)


def _failed(
    request: RunTool, what: str, error: str, shown: dict[str, Any], started: float | None
) -> ToolResult:
    output = json.dumps({"error": error})
    return ToolResult(request.call_id, what, output, shown, _now(), started, error)
