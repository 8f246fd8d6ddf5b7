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
import contextvars
import inspect
import json
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from django.db import connections

from callcore import RunTool, ToolResult
from callcore import tools as outcome
from calls.agents import Agent, AgentHooks, AgentSource, CallInfo, chooses_agents
from calls.tools import CallContext, ToolError, invalid_arguments, parse_arguments, registered_tools

logger = logging.getLogger(__name__)
_now = time.monotonic


# A tool's result the model gets at most (JSON text); a larger one is an error for it.
MAX_OUTPUT_CHARS = 32_000
# The agent hook's own threads: tools that hang cannot starve the voice webhook.
HOOK_THREADS = 4
# What Twilio's `<Dial>` can call: a phone number (E.164) or a SIP address.
_DIALLABLE = re.compile(r"^(\+[1-9]\d{1,14}|sip:\S+)$")
MAX_TARGET_NAME = 100


class HostCode:
    """The host's hooks, and where its sync code runs (`threads` for tools, a few of
    their own for the agent hook)."""

    def __init__(self, hooks: AgentHooks, threads: int, timeout_s: float) -> None:
        self.hooks = hooks
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="host-tool")
        self._hook_executor = ThreadPoolExecutor(HOOK_THREADS, thread_name_prefix="host-hook")

    def close(self) -> None:
        """The process is stopping: threads still running host code are not waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._hook_executor.shutdown(wait=False, cancel_futures=True)

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
        return _checked(chosen).over(default), AgentSource.HOOK

    # --- tools -------------------------------------------------------------------------------

    def start_tool(
        self,
        request: RunTool,
        context: CallContext,
        allowed: frozenset[str],
        done: Callable[[ToolResult], None],
    ) -> Callable[[], None]:
        """Start one of the model's tool calls; `done` gets its result, whatever happened,
        once, on the event loop. Returns the stop for a call that ends first (`done`
        is not called after it).

        Nothing waits for a loop iteration on the way in: a sync tool is on a
        tool thread before this returns; an async one starts at the loop's
        next turn.
        """
        run = _Run(request, done)
        tool = registered_tools().get(request.name) if request.name in allowed else None
        if tool is None:
            run.refuse(outcome.UNKNOWN_TOOL, f"there is no tool named {request.name}")
            return run.stop
        arguments = parse_arguments(request.arguments)
        if isinstance(arguments, str):
            run.refuse(outcome.INVALID_ARGUMENTS, arguments)
            return run.stop
        run.shown = self._redacted(request.name, arguments)
        problem = invalid_arguments(tool.parameters, arguments)
        if problem is not None:
            run.refuse(outcome.INVALID_ARGUMENTS, problem)
            return run.stop
        kwargs = tool.arguments(arguments)
        if tool.context_parameter is not None:
            kwargs[tool.context_parameter] = context
        timeout_s = tool.timeout_s or self.timeout_s
        loop = asyncio.get_running_loop()
        run.deadline = loop.call_later(timeout_s, run.timed_out, tool.name, timeout_s)
        # The call's log context (its SID) goes with the tool, to its thread and back.
        here = contextvars.copy_context()
        if tool.is_async:
            task = asyncio.ensure_future(_awaited(tool.function, kwargs))
            run.cancel = task.cancel
            task.add_done_callback(lambda finished: run.finished(tool.name, finished))
        else:
            future = self._executor.submit(here.run, _timed, tool.function, kwargs)
            run.cancel = future.cancel
            future.add_done_callback(
                lambda finished: loop.call_soon_threadsafe(
                    run.finished, tool.name, finished, context=here
                )
            )
        return run.stop

    def _redacted(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """What the record keeps of the arguments: the hook's answer, as JSON holds it."""
        try:
            shown = self.hooks.redact_tool_arguments(name, dict(arguments))
            kept = json.loads(json.dumps(shown, default=str))
        except Exception:
            logger.exception("redaction hook failed for tool %s: arguments not recorded", name)
            return {"redaction_failed": True}
        return kept if isinstance(kept, dict) else {"redacted": True}

    async def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        if inspect.iscoroutinefunction(method):
            return await method(*args)
        loop = asyncio.get_running_loop()
        here = contextvars.copy_context()
        return await loop.run_in_executor(
            self._hook_executor, here.run, _with_connections, method, args
        )


class _Run:
    """One tool call under way: its result goes to `done` once (or never, once stopped)."""

    def __init__(self, request: RunTool, done: Callable[[ToolResult], None]) -> None:
        self.request = request
        self.done: Callable[[ToolResult], None] | None = done
        self.shown: dict[str, Any] = {}
        self.deadline: asyncio.TimerHandle | None = None
        self.cancel: Callable[[], Any] = lambda: None

    def stop(self) -> None:
        self.done = None
        if self.deadline is not None:
            self.deadline.cancel()
        self.cancel()

    def refuse(self, what: str, error: str) -> None:
        logger.warning("tool call %s refused: %s", self.request.name, what)
        # At the loop's next turn: never inside the drain that started it.
        asyncio.get_running_loop().call_soon(self._give, what, error, None)

    def timed_out(self, name: str, timeout_s: float) -> None:
        logger.warning("tool %s timed out after %.1f s: the model is told", name, timeout_s)
        self._give(outcome.TIMEOUT, f"the tool took longer than {timeout_s:g} s", None)
        self.cancel()  # an async tool stops; a sync one's thread finishes, unheard

    def finished(self, name: str, future: Any) -> None:
        """The tool returned or raised (`future`: its task, or its thread's future)."""
        if self.done is None or future.cancelled():
            return
        error = future.exception()
        if error is None:
            value, started, returned = future.result()
            try:
                text = value if isinstance(value, str) else json.dumps(value, default=str)
            except (TypeError, ValueError):
                logger.exception("tool %s returned what JSON cannot hold", name)
                self._give(outcome.ERROR, "the tool's result was unreadable", started)
                return
            if len(text) > MAX_OUTPUT_CHARS:
                logger.error(
                    "tool %s returned %d characters: too many for the model", name, len(text)
                )
                self._give(outcome.ERROR, "the tool's result was too large", started, returned)
                return
            self._deliver(
                ToolResult(self.request.call_id, outcome.OK, text, self.shown, returned, started)
            )
            return
        started = getattr(error, "started_at", None)
        returned = getattr(error, "returned_at", None)
        if isinstance(error, ToolError):
            logger.info("tool %s refused: %s", name, type(error).__name__)
            self._give(outcome.ERROR, str(error), started, returned)
            return
        logger.error("tool %s failed: the model is told it did", name, exc_info=error)
        self._give(outcome.ERROR, "the tool failed", started, returned)

    def _give(
        self, what: str, error: str, started: float | None, returned: float | None = None
    ) -> None:
        output = json.dumps({"error": error})
        at = returned if returned is not None else _now()
        result = ToolResult(self.request.call_id, what, output, self.shown, at, started, error)
        self._deliver(result)

    def _deliver(self, result: ToolResult) -> None:
        done, self.done = self.done, None
        if self.deadline is not None:
            self.deadline.cancel()
        if done is not None:
            done(result)


def _checked(chosen: Agent) -> Agent:
    """The hook's agent with what cannot work left out, each with a log line: tools not
    registered, transfer targets Twilio cannot dial or whose names are too long."""
    known = registered_tools()
    tools = [name for name in chosen.tools if name in known]
    if len(tools) < len(chosen.tools):
        missing = [name for name in chosen.tools if name not in known]
        logger.warning("agent %s names unregistered tools, left out: %s", chosen.name, missing)
    targets = {
        name: number
        for name, number in chosen.transfer_targets.items()
        if isinstance(number, str) and _DIALLABLE.match(number) and len(name) <= MAX_TARGET_NAME
    }
    if len(targets) < len(chosen.transfer_targets):
        dropped = sorted(set(chosen.transfer_targets) - set(targets))
        logger.warning(
            "agent %s: transfer targets left out (not a +E.164 number or sip: address, or a "
            "name over %d characters): %s",
            chosen.name,
            MAX_TARGET_NAME,
            dropped,
        )
    return replace(chosen, tools=tuple(tools), transfer_targets=targets)


def _with_connections(method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Host code with the ORM, on a thread that keeps its connections."""
    return _fresh_after_failure(method, *args)


def _timed(function: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any, float, float]:
    """A sync tool on its thread: its value, when it started and returned."""
    started = _now()
    try:
        value = _fresh_after_failure(function, **kwargs)
    except BaseException as exc:
        exc.started_at, exc.returned_at = started, _now()  # type: ignore[attr-defined]
        raise
    return value, started, _now()


def _fresh_after_failure(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run host code on a host thread. Like the call path's database threads, these
    keep their connections from call to call (a connection a call must not wait to
    open, a hundred at once at a burst of calls); one left in a broken state, or in
    a transaction the host code did not end, is closed, and the next call opens
    another."""
    try:
        return function(*args, **kwargs)
    except BaseException:
        connections.close_all()
        raise
    finally:
        for connection in connections.all(initialized_only=True):
            if connection.in_atomic_block or connection.needs_rollback:
                connection.close()


async def _awaited(
    function: Callable[..., Any], kwargs: dict[str, Any]
) -> tuple[Any, float, float]:
    """An async tool: its value, when it started and returned."""
    started = _now()
    try:
        value = await function(**kwargs)
    except Exception as exc:
        exc.started_at, exc.returned_at = started, _now()  # type: ignore[attr-defined]
        raise
    return value, started, _now()
