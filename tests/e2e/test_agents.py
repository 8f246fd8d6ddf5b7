"""The host's agents, tools, transfer, keypad and signals, end to end, under Uvicorn and Daphne.

The server under test is the reference host with the hooks and tools of
`tests.e2e.agents` (as a host project names its own); the Realtime stand-in
calls the tools by script, as the service does, and the Twilio stand-in
presses keys and follows `<Dial>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from django.db import connection

from callcore.records import RecordKind
from calls.demo.simulation import database_url
from calls.models import CallSession, PlayoutLog
from simulators import signals as tones
from simulators.realtime import RealtimeScript, Reply, ToolCall
from simulators.realtime.session import RealtimeSession
from simulators.scenarios import GREETING
from simulators.stack import LocalStack, Server
from simulators.twilio import CallerScript, Dtmf, Silence, SpeakWhenHeard
from simulators.twilio.timeline import Timeline
from tests.e2e import agents
from tests.e2e.test_faults import wait_recorded

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="module"),
]

GREETING_MS = 400
# The caller asks once the greeting has played.
ASK = SpeakWhenHeard(tone=1, after_ms=GREETING_MS + 100, speech_ms=300)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stacks(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any
) -> AsyncIterator[list[LocalStack]]:
    """The project under Uvicorn and under Daphne, side by side on the test database:
    every test makes its calls on both at once."""
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    async with contextlib.AsyncExitStack() as running:
        started = []
        for server in SERVERS:
            events = tmp_path_factory.mktemp(f"agents-{server}") / "events.jsonl"
            env = {
                "AGENT_GREETING": GREETING,
                "AGENT_HOOKS": "tests.e2e.agents.Hooks",
                "AGENT_HOOK_TIMEOUT_S": "0.5",
                agents.EVENTS_PATH_VARIABLE: str(events),
            }
            stack = LocalStack(database_url=url, server=server, env=env)
            stack.events_path = events  # type: ignore[attr-defined]
            started.append(stack)
        await asyncio.gather(*(running.enter_async_context(stack) for stack in started))
        yield started


SERVERS: tuple[Server, ...] = ("uvicorn", "daphne")


async def on_both(stacks: list[LocalStack], check: Callable[[LocalStack], Awaitable[None]]) -> None:
    """`check` under each server at once; a failure says under which."""
    outcomes = await asyncio.gather(*(check(stack) for stack in stacks), return_exceptions=True)
    for stack, outcome in zip(stacks, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            outcome.add_note(f"under {stack.server}")
            raise outcome


async def place_call(
    stack: LocalStack,
    replies: tuple[Reply, ...],
    caller: CallerScript,
    from_number: str = agents.TOOLS_AGENT,
) -> tuple[str, Timeline, RealtimeSession]:
    """One call, to its end: its SID, what the caller heard, the model session's recording."""
    stack.queue_script(RealtimeScript(replies=(Reply(GREETING_MS, GREETING), *replies)))
    twilio = stack.caller(caller, from_number=from_number)
    timeline = await twilio.run(timeout_s=45)
    call = await ended(twilio.call_sid)
    # The call's model session, by the id the call recorded (calls may run at once).
    [session] = [s for s in stack.realtime.sessions if s.session["id"] == call.model_session_id]
    return twilio.call_sid, timeline, session


@database_sync_to_async
def rows(call_sid: str, kind: RecordKind) -> list[dict[str, Any]]:
    return list(
        PlayoutLog.objects.filter(call__call_sid=call_sid, kind=kind)
        .order_by("offset_ms", "id")
        .values_list("details", flat=True)
    )


async def ended(call_sid: str) -> CallSession:
    call, _ = await wait_recorded(call_sid)
    assert call is not None
    return call


async def heard_by_receivers(stack: LocalStack, call_sid: str, last: str) -> list[dict[str, Any]]:
    """What the server's hooks and receivers wrote for the call, once `last` is there."""
    path: Path = stack.events_path  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    while True:
        lines = await asyncio.to_thread(_lines, path)
        events = [json.loads(line) for line in lines]
        mine = [event for event in events if event["call_sid"] == call_sid]
        if any(event["what"] == last for event in mine) or time.monotonic() > deadline:
            return mine
        # Another process writes them, with no event to await here: poll, bounded.
        await asyncio.sleep(0.05)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def longest_silence_ms(timeline: Timeline, after: float, until: float) -> float:
    """The longest stretch the caller heard no AI audio between two moments."""
    heard = sorted(
        (s.start, s.end) for s in timeline.heard if s.tone != tones.SILENCE and s.end > after
    )
    gaps, last_end = [], after
    for start, end in heard:
        if start > until:
            break
        gaps.append(start - last_end)
        last_end = max(last_end, end)
    return 1000 * max(gaps, default=until - after)


# --- tools ---------------------------------------------------------------------------------


async def test_a_tool_call_is_run_with_the_orm_and_answered(stacks: list[LocalStack]) -> None:
    async def check(stack: LocalStack) -> None:
        lookup = ToolCall("order_status", {"order_number": "42"}, call_id="call_order")
        call_sid, timeline, session = await place_call(
            stack,
            (Reply(500, "Let me check.", tool_calls=(lookup,)), Reply(700, "It has shipped.")),
            CallerScript(segments=(ASK, Silence(2500)), hangup="stop"),
        )
        assert {"end_call", "order_status", "slow_lookup", "transfer_call"} <= set(
            session.recording.tool_names()
        )
        [output] = session.recording.function_call_outputs()
        assert output.call_id == "call_order"
        assert json.loads(output.output) == {"order": "42", "status": "shipped", "calls_seen": 1}
        # The answer is asked for after the result, and heard in full.
        [after] = [c for c in session.recording.response_creates() if c.at > output.at]
        assert after.response == {}
        assert timeline.heard_ms[3] == pytest.approx(700, abs=40)

        call = await ended(call_sid)
        assert call.agent_name == "tester"
        assert call.agent["source"] == "hook"
        assert call.agent["transfer_targets"] == {"billing": agents.TRANSFER_NUMBER}
        [record] = await rows(call_sid, RecordKind.TOOL_CALL)
        assert record["outcome"] == "ok"
        assert record["name"] == "order_status"
        assert record["arguments"] == {"order_number": "42"}
        assert record["answer_asked"] is True

        events = await heard_by_receivers(stack, call_sid, "call_ended_async")
        said = [event["what"] for event in events]
        # The raising receiver of call_started and call_ended takes nothing from the others.
        assert said[0] == "call_started"
        assert events[0]["agent_name"] == "tester"
        assert "tool_called" in said
        [tool_called] = [event for event in events if event["what"] == "tool_called"]
        assert (tool_called["name"], tool_called["outcome"]) == ("order_status", "ok")
        assert {"call_ended", "call_ended_async"} <= set(said)

    await on_both(stacks, check)


async def test_a_slow_tool_never_leaves_the_caller_in_more_than_2_s_of_silence(
    stacks: list[LocalStack],
) -> None:
    async def check(stack: LocalStack) -> None:
        slow = ToolCall("slow_lookup", {"order_number": "7"})
        call_sid, timeline, session = await place_call(
            stack,
            (
                Reply(500, "Let me look that up.", tool_calls=(slow,)),
                # The holding line, after the live service's time to first audio.
                Reply(1200, "Still looking, one moment.", latency_ms=800),
                Reply(700, "It is packed."),
            ),
            CallerScript(segments=(ASK, Silence(5500)), hangup="stop"),
        )
        assert timeline.heard_ms[4] == pytest.approx(700, abs=40)  # the answer came
        asked_at = timeline.tone_started_at[2]
        answered_at = timeline.tone_started_at[4]
        assert answered_at - asked_at > agents.SLOW_TOOL_S
        silence_ms = longest_silence_ms(timeline, asked_at, answered_at)
        assert silence_ms <= 2000, f"the caller heard nothing for {silence_ms:.0f} ms"
        holding = [
            c
            for c in session.recording.response_creates()
            if c.response.get("tool_choice") == "none"
        ]
        assert holding
        assert "still working" in (holding[0].instructions or "")

        await ended(call_sid)
        [hold, *_] = await rows(call_sid, RecordKind.TOOL_HOLD)
        assert hold["silent_ms"] >= 650  # TOOL_HOLD_AFTER_MS, 700 by default
        [record] = await rows(call_sid, RecordKind.TOOL_CALL)
        assert record["outcome"] == "ok"
        assert record["duration_ms"] >= agents.SLOW_TOOL_S * 1000

    await on_both(stacks, check)


async def test_a_failing_tool_is_an_error_for_the_model_not_the_end_of_the_call(
    stacks: list[LocalStack],
) -> None:
    async def check(stack: LocalStack) -> None:
        broken = ToolCall("broken_tool", {"order_number": "1"})
        call_sid, timeline, session = await place_call(
            stack,
            (Reply(400, "Let me check.", tool_calls=(broken,)), Reply(600, "Sorry, that failed.")),
            CallerScript(segments=(ASK, Silence(2500)), hangup="stop"),
        )
        [output] = session.recording.function_call_outputs()
        assert json.loads(output.output) == {"error": "the tool failed"}
        assert timeline.heard_ms[3] == pytest.approx(600, abs=40)
        call = await ended(call_sid)
        assert call.end_reason == "caller_hangup"
        [record] = await rows(call_sid, RecordKind.TOOL_CALL)
        assert record["outcome"] == "error"

    await on_both(stacks, check)


async def test_a_tool_the_caller_interrupts_finishes_and_the_model_gets_its_result(
    stacks: list[LocalStack],
) -> None:
    async def check(stack: LocalStack) -> None:
        medium = ToolCall("medium_lookup", {"order_number": "9"})
        call_sid, timeline, session = await place_call(
            stack,
            (
                Reply(
                    3000, "Let me look that up for you in our back office.", tool_calls=(medium,)
                ),
                Reply(500, "Sure, go on."),
                Reply(600, "Your order is packed."),
            ),
            CallerScript(
                segments=(ASK, SpeakWhenHeard(tone=2, after_ms=800, speech_ms=700), Silence(3500)),
                hangup="stop",
            ),
        )
        [output] = session.recording.function_call_outputs()
        assert json.loads(output.output)["status"] == "packed"
        await ended(call_sid)
        # The answer held (or paused) while the caller's sound was judged, then the
        # barge-in's clear: one more only if the pause had to clear Twilio itself.
        [paused] = await rows(call_sid, RecordKind.ANSWER_PAUSED)
        assert len(timeline.clears) == 1 + paused["cleared"]
        [record] = await rows(call_sid, RecordKind.TOOL_CALL)
        assert record["outcome"] == "ok"
        assert record["caller_spoke"] is True

    await on_both(stacks, check)


# --- transfer ------------------------------------------------------------------------------


async def test_a_transfer_is_heard_in_full_then_dialled(stacks: list[LocalStack]) -> None:
    async def check(stack: LocalStack) -> None:
        transfer = ToolCall("transfer_call", {"target": "billing", "reason": "a refund"})
        call_sid, timeline, _ = await place_call(
            stack,
            (Reply(1500, "Putting you through to billing.", tool_calls=(transfer,)),),
            CallerScript(segments=(ASK,), hangup=None),
        )
        assert timeline.dialed == agents.TRANSFER_NUMBER
        assert timeline.heard_ms[2] == pytest.approx(1500, abs=40)  # the handoff, in full
        assert timeline.last_echo_at is not None
        assert timeline.dialed_at is not None
        assert timeline.dialed_at - timeline.last_echo_at <= 0.3
        assert timeline.closed_by == "server"

        call = await ended(call_sid)
        assert call.end_reason == "transferred"
        assert call.transfer_target == "billing"
        [drain] = await rows(call_sid, RecordKind.DRAIN_COMPLETED)
        assert drain["final_mark_echoed"] is True
        events = await heard_by_receivers(stack, call_sid, "call_ended")
        said = [event["what"] for event in events]
        assert said.index("call_transferred") < said.index("call_ended")
        [transferred] = [event for event in events if event["what"] == "call_transferred"]
        assert transferred["target"] == "billing"

    await on_both(stacks, check)


async def test_a_barge_in_during_the_handoff_cancels_the_transfer(stacks: list[LocalStack]) -> None:
    async def check(stack: LocalStack) -> None:
        transfer = ToolCall("transfer_call", {"target": "billing"})
        call_sid, timeline, session = await place_call(
            stack,
            (
                Reply(
                    3000, "Let me put you through to billing, one moment.", tool_calls=(transfer,)
                ),
                Reply(600, "Of course, what else?"),
            ),
            CallerScript(
                segments=(ASK, SpeakWhenHeard(tone=2, after_ms=800, speech_ms=500), Silence(2500)),
                hangup="stop",
            ),
        )
        assert timeline.dialed is None
        assert timeline.heard_ms[3] == pytest.approx(600, abs=40)  # the conversation went on
        [told] = session.recording.function_call_outputs()
        assert json.loads(told.output) == {"transferred": False, "reason": "barge_in"}
        call = await ended(call_sid)
        assert call.end_reason == "caller_hangup"
        assert call.transfer_target == ""
        [cancelled] = await rows(call_sid, RecordKind.HANGUP_CANCELLED)
        assert cancelled["transfer_target"] == "billing"

    await on_both(stacks, check)


# --- the keypad and the hooks ----------------------------------------------------------------


async def test_keypad_digits_reach_the_model_and_the_hosts_hook(stacks: list[LocalStack]) -> None:
    async def check(stack: LocalStack) -> None:
        call_sid, timeline, session = await place_call(
            stack,
            (Reply(600, "Order 42, got it."),),
            CallerScript(
                segments=(Silence(800), Dtmf("42#", gap_ms=100), Silence(2000)), hangup="stop"
            ),
        )
        assert [press.digit for press in timeline.dtmf] == ["4", "2", "#"]
        typed = [
            event["item"]
            for event in session.recording.received_of("conversation.item.create")
            if event["item"].get("role") == "user"
        ]
        assert len(typed) == 1
        assert "42" in typed[0]["content"][0]["text"]
        assert timeline.heard_ms[2] == pytest.approx(600, abs=40)  # the model answered it
        await ended(call_sid)
        assert [r["digits"] for r in await rows(call_sid, RecordKind.KEYPAD_INPUT)] == ["42"]
        events = await heard_by_receivers(stack, call_sid, "keypad")
        assert {"what": "keypad", "call_sid": call_sid, "digits": "42"} in events

    await on_both(stacks, check)


async def test_a_slow_or_raising_agent_hook_gives_the_default_agent(
    stacks: list[LocalStack],
) -> None:
    async def check(stack: LocalStack) -> None:
        async def greeted_by_default(number: str, source: str) -> None:
            call_sid, timeline, session = await place_call(
                stack, (), CallerScript(segments=(Silence(1200),), hangup="stop"), number
            )
            # Greeted all the same.
            assert timeline.heard_ms[1] == pytest.approx(GREETING_MS, abs=40)
            assert "order_status" not in session.recording.tool_names()
            call = await ended(call_sid)
            assert (call.agent_name, call.agent["source"]) == ("default", source)
            assert call.end_reason == "caller_hangup"

        # Both at once (their scripts are the same): a slow hook holds up no other call.
        await asyncio.gather(
            greeted_by_default(agents.SLOW_HOOK, "default_after_timeout"),
            greeted_by_default(agents.RAISING_HOOK, "default_after_error"),
        )

    await on_both(stacks, check)
