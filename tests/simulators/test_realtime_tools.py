"""The Realtime stand-in's function calls, as the real service streams them, and what it
records of a bridge's tool results, `response.create`s and tools."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from simulators.realtime import RealtimeScript, RealtimeSimulator, Reply, ToolCall
from simulators.realtime.responder import argument_chunks
from tests.simulators.realtime_helpers import (
    PCMU_SESSION,
    append_audio,
    recv,
    recv_until,
    sdk_connection,
    send,
    start_session,
    utterance,
)

CAPTURE = (
    Path(__file__).resolve().parents[1] / "data" / "real-traffic" / "openai-beta-webrtc-log1.json"
)
TOOLS = [
    {"type": "function", "name": "lookup_order", "parameters": {"type": "object"}},
    {"type": "function", "name": "end_call", "parameters": {"type": "object"}},
]
# GA names of the events the beta capture carries under older ones.
BETA = {"conversation.item.added": "conversation.item.created"}


def captured_function_call() -> list[dict[str, Any]]:
    """The capture's function call, in order: every event that names its item."""
    events = json.loads(CAPTURE.read_text())["events"]
    added = next(
        e
        for e in events
        if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call"
    )
    item_id = added["item"]["id"]
    return [e for e in events if item_id in (e.get("item_id"), e.get("item", {}).get("id"))]


def events_of(item_id: str, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in seen if item_id in (e.get("item_id"), e.get("item", {}).get("id"))]


def collapsed(types: list[str]) -> list[str]:
    """Event types with each run of one type (the deltas) as one."""
    return [kind for kind, _ in itertools.groupby(types)]


def script(*replies: Reply, **options: Any) -> RealtimeScript:
    return RealtimeScript(replies=replies, **options)


async def test_tool_calls_follow_the_audio_in_the_order_and_shape_of_the_capture() -> None:
    reply = Reply(
        audio_ms=300,
        tool_calls=(
            ToolCall("lookup_order", {"order_id": "A-17", "verbose": True}),
            ToolCall("transfer", {"reason": "wants a person"}, call_id="call_fixed"),
        ),
        end_call=True,
        end_call_arguments={"reason": "done"},
    )
    async with RealtimeSimulator(lambda: script(reply)) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        done, seen = await recv_until(conn, "response.done")

    capture = captured_function_call()
    output = done["response"]["output"]
    assert [o["type"] for o in output] == ["message", *["function_call"] * 3]
    assert [o["name"] for o in output[1:]] == ["lookup_order", "transfer", "end_call"]
    assert [o["status"] for o in output] == ["completed"] * 4
    assert output[2]["call_id"] == "call_fixed"
    generated = [output[1]["call_id"], output[3]["call_id"]]
    assert all(c.startswith("call_") for c in generated)
    assert len(set(generated)) == 2
    types = [e["type"] for e in seen]
    audio_closed = types.index("conversation.item.done")  # the audio item's, first
    first_call = types.index("response.output_item.added", audio_closed)
    assert first_call == audio_closed + 1  # the calls come after every level of the audio

    expected_arguments = [
        '{"order_id":"A-17","verbose":true}',
        '{"reason":"wants a person"}',
        '{"reason":"done"}',
    ]
    for index, (item, arguments) in enumerate(zip(output[1:], expected_arguments, strict=True)):
        call = events_of(item["id"], seen)
        # The capture's order (beta names; GA adds `conversation.item.done` last).
        assert collapsed([BETA.get(e["type"], e["type"]) for e in call]) == [
            *collapsed([e["type"] for e in capture]),
            "conversation.item.done",
        ]
        assert all(e.get("output_index", index + 1) == index + 1 for e in call)
        by_type = {e["type"]: e for e in call}
        for theirs in capture:
            ours = by_type[{v: k for k, v in BETA.items()}.get(theirs["type"], theirs["type"])]
            assert list(ours) == list(theirs), ours["type"]
            if "item" in theirs:  # GA items: the capture's keys but `object`
                assert list(ours["item"]) == [k for k in theirs["item"] if k != "object"]
        added = by_type["response.output_item.added"]["item"]
        assert (added["status"], added["arguments"]) == ("in_progress", "")
        deltas = [e["delta"] for e in call if e["type"] == "response.function_call_arguments.delta"]
        assert len(deltas) > 1
        assert "".join(deltas) == arguments
        finished = by_type["response.function_call_arguments.done"]
        assert (finished["name"], finished["arguments"]) == (item["name"], arguments)
        assert finished["call_id"] == item["call_id"] == added["call_id"]
        assert by_type["response.output_item.done"]["item"] == item
        assert by_type["conversation.item.done"]["item"] == item
        assert item["arguments"] == arguments


async def test_beta_names_give_the_capture_s_keys_exactly() -> None:
    reply = Reply(audio_ms=100, tool_calls=(ToolCall("lookup_order", {"order_id": "A-17"}),))
    async with (
        RealtimeSimulator(lambda: script(reply), beta_names=True) as sim,
        sdk_connection(sim) as conn,
    ):
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        done, seen = await recv_until(conn, "response.done")

    capture = captured_function_call()
    call = events_of(done["response"]["output"][1]["id"], seen)
    assert collapsed([e["type"] for e in call]) == collapsed([e["type"] for e in capture])
    for ours, theirs in zip(collapsed_events(call), collapsed_events(capture), strict=True):
        assert list(ours) == list(theirs)
        if "item" in theirs:
            assert list(ours["item"]) == list(theirs["item"])


def collapsed_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [next(group) for _, group in itertools.groupby(events, key=lambda e: e["type"])]


async def test_a_response_of_function_calls_only_has_no_audio_item() -> None:
    reply = Reply(audio_ms=0, tool_calls=(ToolCall("lookup_order", {"order_id": "A-17"}),))
    async with RealtimeSimulator(lambda: script(reply)) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        done, seen = await recv_until(conn, "response.done")

    types = [e["type"] for e in seen]
    assert not [t for t in types if "audio" in t or "content_part" in t]
    assert types[:4] == [
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
        "conversation.item.added",
    ]
    assert seen[2]["output_index"] == 0
    assert seen[2]["item"]["type"] == "function_call"
    assert [o["type"] for o in done["response"]["output"]] == ["function_call"]
    assert done["response"]["status"] == "completed"
    assert sim.sessions[0].responses[0].item_id is None


@pytest.mark.parametrize("how", ["response.cancel", "speech"])
async def test_a_call_not_begun_when_the_response_is_cancelled_is_never_made(how: str) -> None:
    reply = Reply(audio_ms=3000, tool_calls=(ToolCall("lookup_order"),), end_call=True)
    async with (
        RealtimeSimulator(lambda: script(reply, speed=4.0)) as sim,
        sdk_connection(sim) as conn,
    ):
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        await recv_until(conn, "response.output_audio.delta")
        if how == "speech":
            await append_audio(conn, utterance(0, 400, 0))
        else:
            await send(conn, {"type": "response.cancel"})
        done, seen = await recv_until(conn, "response.done")

    reason = "turn_detected" if how == "speech" else "client_cancelled"
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": reason}
    assert not [e for e in seen if "function_call" in e["type"]]
    output = done["response"]["output"]
    assert [(o["type"], o["status"]) for o in output] == [("message", "incomplete")]


async def test_a_cancel_while_the_arguments_stream_closes_the_call_incomplete() -> None:
    arguments = {"note": " ".join(f"word{n}" for n in range(40))}
    reply = Reply(audio_ms=0, tool_calls=(ToolCall("take_note", arguments),))
    # Slow: each piece of the arguments takes 40 ms, the cancel lands mid-way.
    async with (
        RealtimeSimulator(lambda: script(reply, speed=0.5)) as sim,
        sdk_connection(sim) as conn,
    ):
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        await recv_until(conn, "response.function_call_arguments.delta")
        await send(conn, {"type": "response.cancel"})
        done, seen = await recv_until(conn, "response.done")

    full = json.dumps(arguments, separators=(",", ":"))
    types = [e["type"] for e in seen]
    tail = types[types.index("response.function_call_arguments.done") :]
    assert tail == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "conversation.item.done",
    ]
    finished = seen[types.index("response.function_call_arguments.done")]
    assert full.startswith(finished["arguments"])
    assert finished["arguments"] != full
    item = done["response"]["output"][0]
    assert (item["status"], item["arguments"]) == ("incomplete", finished["arguments"])
    assert done["response"]["status"] == "cancelled"


async def test_tool_results_are_added_recorded_and_start_no_response() -> None:
    replies = (
        Reply(audio_ms=0, tool_calls=(ToolCall("lookup_order", {"order_id": "A-17"}),)),
        Reply(audio_ms=200, transcript="It shipped."),
    )
    async with RealtimeSimulator(lambda: script(*replies)) as sim, sdk_connection(sim) as conn:
        await recv(conn)
        await send(conn, {"type": "session.update", "session": {**PCMU_SESSION, "tools": TOOLS}})
        await recv_until(conn, "session.updated")
        await send(conn, {"type": "response.create"})
        done, _ = await recv_until(conn, "response.done")
        call = done["response"]["output"][0]

        before = time.monotonic()
        output_item = {"type": "function_call_output", "call_id": call["call_id"]}
        await send(
            conn,
            {"type": "conversation.item.create", "item": {**output_item, "output": '{"ok":true}'}},
        )
        added = await recv(conn)
        finished = await recv(conn)
        # Nothing started for it: a cancel now finds no response (events are handled in order).
        await send(conn, {"type": "response.cancel"})
        refused = await recv(conn)
        await send(
            conn,
            {"type": "response.create", "response": {"instructions": "Say it shipped."}},
        )
        answer, seen = await recv_until(conn, "response.done")
        after = time.monotonic()

    assert added["type"] == "conversation.item.added"
    assert finished["type"] == "conversation.item.done"
    assert added["previous_item_id"] == call["id"]
    item = added["item"]
    assert item == {
        "id": item["id"],
        "type": "function_call_output",
        "status": "completed",
        "call_id": call["call_id"],
        "output": '{"ok":true}',
    }
    assert finished["item"] == item
    assert refused["error"]["code"] == "response_cancel_not_active"
    assert answer["response"]["status"] == "completed"
    assert seen[0]["type"] == "response.created"

    recording = sim.sessions[0].recording
    assert recording.tool_names() == ["lookup_order", "end_call"]
    assert recording.tools() == TOOLS
    outputs = recording.function_call_outputs()
    assert [(o.call_id, o.output, o.item_id) for o in outputs] == [
        (call["call_id"], '{"ok":true}', None)
    ]
    assert before <= outputs[0].at <= after
    assert await recording.wait_function_call_output() == outputs[0]
    creates = recording.response_creates()
    assert [c.instructions for c in creates] == [None, "Say it shipped."]
    assert creates[0].at < outputs[0].at < creates[1].at
    assert (await recording.wait_response_create(2)).response == {"instructions": "Say it shipped."}
    assert sim.sessions[0].conversation.items[item["id"]].type == "function_call_output"


async def test_an_output_for_an_unknown_call_id_is_accepted() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        item = {"type": "function_call_output", "call_id": "call_nope", "output": "{}"}
        await send(conn, {"type": "conversation.item.create", "item": {**item, "id": "out_1"}})
        added = await recv(conn)

    assert added["type"] == "conversation.item.added"
    assert added["item"]["id"] == "out_1"
    outputs = sim.sessions[0].recording.function_call_outputs()
    assert [(o.call_id, o.item_id) for o in outputs] == [("call_nope", "out_1")]


async def test_an_output_that_is_not_text_is_refused() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        item = {"type": "function_call_output", "call_id": "call_1", "output": {"ok": True}}
        await send(conn, {"type": "conversation.item.create", "item": item})
        refused = await recv(conn)

    assert refused["type"] == "error"
    assert sim.sessions[0].conversation.items == {}


async def test_response_create_while_one_is_active_is_refused_as_the_service_does() -> None:
    async with (
        RealtimeSimulator(lambda: script(Reply(audio_ms=1500), speed=4.0)) as sim,
        sdk_connection(sim) as conn,
    ):
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        created, _ = await recv_until(conn, "response.created")
        await send(
            conn,
            {"type": "response.create", "event_id": "evt_2", "response": {"instructions": "x"}},
        )
        refused, _ = await recv_until(conn, "error")
        done, _ = await recv_until(conn, "response.done")

    response_id = created["response"]["id"]
    assert refused["error"] == {
        "type": "invalid_request_error",
        "code": "conversation_already_has_active_response",
        "message": f"Conversation already has an active response in progress: {response_id}. "
        "Wait until the response is finished before creating a new one.",
        "param": None,
        "event_id": None,
    }
    assert done["response"]["id"] == response_id
    assert done["response"]["status"] == "completed"  # the active one goes on
    assert len(sim.sessions[0].responses) == 1
    assert [c.instructions for c in sim.sessions[0].recording.response_creates()] == [None, "x"]


@pytest.mark.parametrize(
    "text",
    ['{"order_id":"A-17","verbose":true}', "{}", "", '{"note":"two  spaces, é"} ', "not json"],
)
def test_argument_chunks_are_the_arguments_cut_into_tokens(text: str) -> None:
    chunks = argument_chunks(text)
    assert "".join(chunks) == text
    assert all(chunks)
    if len(text) > 2:
        assert len(chunks) > 1


def test_a_tool_call_s_arguments_text() -> None:
    assert ToolCall("f", {"a": 1, "b": [1, 2]}).arguments_text == '{"a":1,"b":[1,2]}'
    assert ToolCall("f").arguments_text == "{}"
    assert ToolCall("f", '{"broken"').arguments_text == '{"broken"'
    reply = Reply(audio_ms=0, tool_calls=(ToolCall("f"),), end_call=True)
    assert [c.name for c in reply.calls] == ["f", "end_call"]
    assert reply.parts == ()
