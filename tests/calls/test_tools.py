"""The host's tools and hooks: schemas from signatures, checked arguments, and how they run."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import threading
from typing import Annotated, Any, Literal

import pytest
from django.core.checks import run_checks

from callcore import RunTool, ToolResult
from calls.agents import REDACTED, Agent, AgentHooks, AgentSource, CallInfo, load_hooks
from calls.live.tools import HostCode
from calls.tools import (
    CallContext,
    ToolError,
    invalid_arguments,
    parse_arguments,
    registered_tools,
    schema_of,
    tool,
)

CONTEXT = CallContext("CA1", "+15550001", "+15550002", "tester")
DEFAULT = Agent(name="default", instructions="Be brief.", voice="marin", greeting="Hello.")


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


def described(
    order: Annotated[str, "The order number."],
    count: int,
    size: Size,
    mode: Literal["fast", "slow"] = "fast",
    note: str | None = None,
    tags: list[str] | None = None,
    call: CallContext | None = None,
) -> None:
    """Look an order up.

    More words the model does not need.
    """


def test_a_schema_comes_from_the_signature_without_the_call_context() -> None:
    assert schema_of(described, skip="call") == {
        "type": "object",
        "properties": {
            "order": {"type": "string", "description": "The order number."},
            "count": {"type": "integer"},
            "size": {"type": "string", "enum": ["s", "l"]},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "note": {"type": ["string", "null"]},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        },
        "required": ["order", "count", "size"],
        "additionalProperties": False,
    }


def test_registration_describes_the_tool_and_refuses_what_cannot_be_described() -> None:
    @tool(name="described_tool", timeout_s=3)
    def lookup(order: str, call: CallContext) -> dict[str, str]:
        """Look an order up.

        Details.
        """
        return {}

    registered = registered_tools()["described_tool"]
    assert registered.definition()["description"] == "Look an order up."
    assert registered.context_parameter == "call"
    assert registered.timeout_s == 3
    assert not registered.is_async
    with pytest.raises(TypeError, match="cannot be described"):
        tool(name="bad")(_takes_a_set_of_objects)
    with pytest.raises(ValueError, match="platform's own"):
        tool(name="transfer_call")(lookup)


def _takes_a_set_of_objects(things: object) -> None:
    """Nothing a model can write."""


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"order": "1", "count": 2, "size": "s"}, None),
        ({"count": 2, "size": "s"}, "arguments: order is missing"),
        ({"order": 1, "count": 2, "size": "s"}, "order must be of type string"),
        ({"order": "1", "count": True, "size": "s"}, "count must be of type integer"),
        ({"order": "1", "count": 2, "size": "m"}, "size must be one of s, l"),
        ({"order": "1", "count": 2, "size": "s", "x": 1}, "arguments: x is not a parameter"),
        ({"order": "1", "count": 2, "size": "s", "tags": ["a", 3]}, "tags[1] must be of type"),
        ({"order": "1", "count": 2, "size": "s", "note": None}, None),
    ],
)
def test_arguments_are_checked_against_the_schema(
    value: dict[str, Any], problem: str | None
) -> None:
    found = invalid_arguments(schema_of(described, skip="call"), value)
    assert found == problem if problem is None else problem in (found or "")


def test_arguments_that_are_not_a_json_object_are_named() -> None:
    assert parse_arguments('{"a": 1}') == {"a": 1}
    assert parse_arguments("") == {}
    assert parse_arguments("{not json") == "the arguments are not JSON"
    assert parse_arguments("[1]") == "the arguments are not a JSON object"


def test_the_default_redaction_hides_what_looks_secret_at_any_depth() -> None:
    shown = AgentHooks().redact_tool_arguments(
        "pay", {"card_number": "4111", "order": "7", "payer": [{"PIN": "1234", "name": "Ada"}]}
    )
    assert shown == {
        "card_number": REDACTED,
        "order": "7",
        "payer": [{"PIN": REDACTED, "name": "Ada"}],
    }


def test_an_agent_is_stored_and_read_back_and_takes_the_defaults_it_leaves_empty() -> None:
    agent = Agent(name="orders", tools=("a",), transfer_targets={"billing": "+1555"})
    merged = agent.over(DEFAULT)
    assert (merged.instructions, merged.voice, merged.greeting) == ("Be brief.", "marin", "Hello.")
    assert Agent.from_stored({**merged.stored(), "source": "hook", "unknown": 1}) == merged
    # An agent that waits for the caller says so with an empty greeting.
    assert Agent(greeting="").over(DEFAULT).greeting == ""


# --- running them -------------------------------------------------------------------------

RELEASE = threading.Event()


@tool(name="t_sync")
def t_sync(order: str, call: CallContext) -> dict[str, str]:
    return {"order": order, "caller": call.from_number}


@tool(name="t_async")
async def t_async(order: str) -> dict[str, str]:
    await asyncio.sleep(0)
    return {"order": order}


@tool(name="t_refuses")
def t_refuses(order: str) -> None:
    raise ToolError("No such order.")


@tool(name="t_crashes")
async def t_crashes(order: str) -> None:
    raise KeyError(order)


@tool(name="t_blocks", timeout_s=0.05)
def t_blocks(order: str) -> None:
    RELEASE.wait(5)


@tool(name="t_sized")
def t_sized(size: Size, count: int = 1) -> str:
    # The enum member, not its value, reaches the function.
    return size.name * count


GATE = threading.Event()
RETURNED = threading.Event()


@tool(name="t_gated")
def t_gated(order: str) -> str:
    GATE.wait(5)
    RETURNED.set()
    return order


class Hiding(AgentHooks):
    def redact_tool_arguments(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if name == "t_async":
            raise RuntimeError("a bug in the host's redaction")
        return {"order": "[hidden]"}


async def run(name: str, arguments: str = '{"order": "42"}', **options: Any) -> ToolResult:
    code = HostCode(options.get("hooks", Hiding()), threads=2, timeout_s=1.0)
    done: asyncio.Future[ToolResult] = asyncio.get_running_loop().create_future()
    allowed = frozenset(options.get("allowed", registered_tools()))
    code.start_tool(RunTool("call_1", name, arguments, 0.0), CONTEXT, allowed, done.set_result)
    try:
        return await asyncio.wait_for(done, 5)
    finally:
        code.close()


async def test_a_sync_tool_runs_on_a_tool_thread_with_the_calls_context() -> None:
    result = await run("t_sync")
    assert (result.outcome, json.loads(result.output)) == (
        "ok",
        {"order": "42", "caller": "+15550001"},
    )
    assert result.arguments == {"order": "[hidden]"}  # what the record keeps
    assert result.started_at is not None
    assert result.started_at <= result.returned_at


async def test_an_async_tool_and_a_failed_redaction() -> None:
    result = await run("t_async")
    assert (result.outcome, json.loads(result.output)) == ("ok", {"order": "42"})
    assert result.arguments == {"redaction_failed": True}


async def test_a_tool_error_is_told_to_the_model_in_its_own_words() -> None:
    result = await run("t_refuses")
    assert (result.outcome, json.loads(result.output)) == ("error", {"error": "No such order."})


async def test_a_crash_is_logged_and_told_to_the_model_without_its_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, "calls.live.tools"):
        result = await run("t_crashes")
    assert (result.outcome, json.loads(result.output)) == ("error", {"error": "the tool failed"})
    assert "tool t_crashes failed" in caplog.text


async def test_a_tool_past_its_timeout_is_a_timeout_for_the_model() -> None:
    try:
        result = await run("t_blocks")
    finally:
        RELEASE.set()
    assert result.outcome == "timeout"
    assert json.loads(result.output) == {"error": "the tool took longer than 0.05 s"}


@pytest.mark.parametrize(
    ("name", "arguments", "allowed", "what"),
    [
        ("t_sync", '{"order": "42"}', {"t_async"}, "unknown_tool"),
        ("missing", "{}", {"missing"}, "unknown_tool"),
        ("t_sync", "{nope", None, "invalid_arguments"),
        ("t_sync", '{"order": 42}', None, "invalid_arguments"),
    ],
)
async def test_what_cannot_run_is_refused_before_it_runs(
    name: str, arguments: str, allowed: set[str] | None, what: str
) -> None:
    options = {"allowed": allowed} if allowed is not None else {}
    result = await run(name, arguments, **options)
    assert result.outcome == what
    assert result.started_at is None
    assert "error" in json.loads(result.output)


@pytest.mark.parametrize("stopped", [True, False])
async def test_a_stopped_tool_reports_nothing(stopped: bool) -> None:
    GATE.clear()
    RETURNED.clear()
    code = HostCode(AgentHooks(), threads=1, timeout_s=5.0)
    results: list[ToolResult] = []
    request = RunTool("call_1", "t_gated", '{"order": "1"}', 0.0)
    stop = code.start_tool(request, CONTEXT, frozenset({"t_gated"}), results.append)
    if stopped:
        stop()  # the call ended while its tool ran
    GATE.set()
    await asyncio.to_thread(RETURNED.wait, 5)
    # The thread's result is handed to the loop (call_soon_threadsafe): let it come.
    for _ in range(3):
        await asyncio.sleep(0)
    code.close()
    assert [r.outcome for r in results] == ([] if stopped else ["ok"])


async def test_enum_values_arrive_as_members_and_a_huge_result_is_an_error() -> None:
    result = await run("t_sized", '{"size": "l", "count": 2}', hooks=AgentHooks())
    assert result.output == "LARGELARGE"
    huge = await run("t_sized", '{"size": "s", "count": 40000}', hooks=AgentHooks())
    assert (huge.outcome, json.loads(huge.output)) == (
        "error",
        {"error": "the tool's result was too large"},
    )


# --- the agent hook ----------------------------------------------------------------------

CALL = CallInfo("CA1", "+15550001", "+15550002")
HOOK_RELEASE = threading.Event()


class Choosing(AgentHooks):
    def agent_for_call(self, call: CallInfo, default: Agent) -> Agent | None:
        behaviour = call.parameters.get("behaviour")
        if behaviour == "raise":
            raise RuntimeError("lookup failed")
        if behaviour == "slow":
            HOOK_RELEASE.wait(5)
        if behaviour == "junk":
            return "an agent"  # type: ignore[return-value]
        if behaviour == "none":
            return None
        return Agent(name="chosen", tools=("t_sync", "not_registered"))


class AsyncChoosing(AgentHooks):
    async def agent_for_call(self, call: CallInfo, default: Agent) -> Agent | None:  # type: ignore[override]
        return Agent(name="async", voice="cedar")


@pytest.mark.parametrize(
    ("behaviour", "name", "source"),
    [
        ("choose", "chosen", AgentSource.HOOK),
        ("none", "default", AgentSource.DEFAULT),
        ("raise", "default", AgentSource.DEFAULT_AFTER_ERROR),
        ("junk", "default", AgentSource.DEFAULT_AFTER_ERROR),
        ("slow", "default", AgentSource.DEFAULT_AFTER_TIMEOUT),
    ],
)
async def test_the_hook_chooses_within_its_time_or_the_default_agent_answers(
    behaviour: str, name: str, source: AgentSource
) -> None:
    HOOK_RELEASE.clear()
    code = HostCode(Choosing(), threads=1, timeout_s=1.0)
    call = CallInfo("CA1", "+1", "+2", parameters={"behaviour": behaviour})
    try:
        agent, chosen_by = await code.choose_agent(call, DEFAULT, timeout_s=0.1)
    finally:
        HOOK_RELEASE.set()
        code.close()
    assert (agent.name, chosen_by) == (name, source)
    if source is AgentSource.HOOK:
        assert agent.tools == ("t_sync",)  # an unregistered tool is left out
        assert agent.instructions == DEFAULT.instructions


async def test_an_async_hook_and_the_default_hooks() -> None:
    code = HostCode(AsyncChoosing(), threads=1, timeout_s=1.0)
    agent, source = await code.choose_agent(CALL, DEFAULT, timeout_s=1.0)
    assert (agent.name, agent.voice, source) == ("async", "cedar", AgentSource.HOOK)
    plain = HostCode(AgentHooks(), threads=1, timeout_s=1.0)
    assert await plain.choose_agent(CALL, DEFAULT, timeout_s=1.0) == (DEFAULT, AgentSource.DEFAULT)
    code.close()
    plain.close()


class AsyncRedaction(AgentHooks):
    async def redact_tool_arguments(  # type: ignore[override]
        self, name: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        return arguments


def test_a_hooks_path_that_cannot_be_used_is_named() -> None:
    assert isinstance(load_hooks("calls.agents.AgentHooks"), AgentHooks)
    with pytest.raises(ImportError):
        load_hooks("nowhere.Hooks")
    with pytest.raises(TypeError, match="not a subclass"):
        load_hooks("calls.agents.Agent")
    with pytest.raises(TypeError, match="not async"):
        load_hooks(f"{__name__}.AsyncRedaction")


class Targets(AgentHooks):
    def agent_for_call(self, call: CallInfo, default: Agent) -> Agent | None:
        return Agent(
            name="t",
            transfer_targets={
                "billing": "+15550100",
                "desk": "sip:desk@example.com",
                "typo": "555-0100",
                "x" * 101: "+15550101",
            },
        )


async def test_transfer_targets_twilio_cannot_dial_are_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    code = HostCode(Targets(), threads=1, timeout_s=1.0)
    agent, _ = await code.choose_agent(CALL, DEFAULT, timeout_s=1.0)
    code.close()
    assert agent.transfer_targets == {"billing": "+15550100", "desk": "sip:desk@example.com"}
    assert "typo" in caplog.text


def test_the_system_check_names_hooks_it_cannot_use(settings: Any) -> None:
    settings.CALLBRIDGE = {**settings.CALLBRIDGE, "AGENT_HOOKS": "calls.agents.Agent"}
    [error] = [m for m in run_checks() if m.id == "callbridge.E008"]
    assert "calls.agents.Agent" in error.msg
