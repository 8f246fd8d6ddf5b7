"""Realtime simulator driven by the official SDK: session, responses, speech, tool calls."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import pytest
import websockets
from websockets.asyncio.client import connect

from simulators import signals
from simulators.realtime import RealtimeScript, RealtimeSimulator, Reply
from simulators.realtime.script import Part
from tests.simulators.realtime_helpers import (
    append_audio,
    delta_bytes,
    recv_until,
    sdk_connection,
    send,
    start_session,
    utterance,
)


def script(*replies: Reply, **options: object) -> RealtimeScript:
    return RealtimeScript(replies=replies, **options)  # type: ignore[arg-type]


async def test_session_update_round_trip() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        updated = await start_session(conn)
        session = updated["session"]
        assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
        assert session["audio"]["output"]["voice"] == "marin"
        assert session["model"] == "gpt-realtime"
        server = await sim.wait_for_session()
        assert server.vad.config.prefix_padding_ms == 300


async def test_missing_api_key_is_rejected_with_401() -> None:
    async with RealtimeSimulator() as sim:
        url = sim.websocket_base_url + "/realtime?model=gpt-realtime"
        with pytest.raises(websockets.InvalidStatus) as raised:
            async with connect(url):
                pass
        assert raised.value.response.status_code == 401
        assert sim.sessions == []


async def test_greeting_is_scripted_length_varied_and_faster_than_real_time() -> None:
    async with (
        RealtimeSimulator(
            lambda: script(Reply(audio_ms=1200, transcript="Hello there caller"))
        ) as sim,
        sdk_connection(sim) as conn,
    ):
        await start_session(conn)
        started = time.monotonic()
        await send(conn, {"type": "response.create"})
        done, seen = await recv_until(conn, "response.done")
        elapsed = time.monotonic() - started
        sizes = delta_bytes(seen, "response.output_audio.delta")
        assert sum(sizes) == 1200 * signals.BYTES_PER_MS
        assert len(set(sizes)) > 1
        assert all(40 * 8 <= s <= 240 * 8 for s in sizes[:-1])
        # Faster than real time: 1.2 s of audio is produced at 6x (0.2 s); the bound
        # is real time itself, so a loaded machine does not fail what is not wrong.
        assert elapsed < 1.2
        types = [e["type"] for e in seen]
        assert types[:5] == [
            "response.created",
            "rate_limits.updated",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
        ]
        assert types[-5:] == [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
        ]
        transcript = "".join(
            e["delta"] for e in seen if e["type"] == "response.output_audio_transcript.delta"
        )
        assert transcript == "Hello there caller"
        assert done["response"]["status"] == "completed"
        assert done["response"]["output"][0]["type"] == "message"
        audio = b"".join(
            base64.b64decode(e["delta"]) for e in seen if e["type"] == "response.output_audio.delta"
        )
        frames = [audio[i : i + 160] for i in range(0, len(audio), 160)]
        assert {signals.detect_tone(f) for f in frames} == {1}


async def test_speech_triggers_vad_events_with_padding_and_a_response() -> None:
    async with (
        RealtimeSimulator(lambda: script(Reply(audio_ms=200), Reply(audio_ms=300))) as sim,
        sdk_connection(sim) as conn,
    ):
        await start_session(conn)
        audio = utterance(700, 600, 800)
        await append_audio(conn, audio)
        started, _ = await recv_until(conn, "input_audio_buffer.speech_started")
        assert started["audio_start_ms"] == 700 - 300
        stopped, _ = await recv_until(conn, "input_audio_buffer.speech_stopped")
        assert stopped["audio_end_ms"] == 700 + 600 + 500
        assert stopped["item_id"] == started["item_id"]
        committed, _ = await recv_until(conn, "input_audio_buffer.committed")
        assert committed["item_id"] == started["item_id"]
        _, seen = await recv_until(conn, "response.done")
        assert sum(delta_bytes(seen, "response.output_audio.delta")) == 200 * 8
        session = sim.sessions[0]
        assert session.recording.input_audio_bytes == len(audio)
        assert bytes(session.recording.input_audio) == audio
        assert session.recording.input_audio_sha256 == hashlib.sha256(audio).hexdigest()
        appended = session.recording.received_of("input_audio_buffer.append")
        assert appended[0]["audio"] == 160  # payload recorded as its byte length


async def test_speech_started_is_sent_after_the_detection_delay() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        session = await sim.wait_for_session()
        await append_audio(conn, utterance(400, 100, 100))
        await append_audio(conn, utterance(0, 300, 0))
        started = await session.recording.next_sent("input_audio_buffer.speech_started")
        # The 100 ms blip was too short; the second utterance began at 600 ms.
        assert started["audio_start_ms"] == 600 - 300
        sent_at = next(
            r.at for r in session.recording.sent if r.type == "input_audio_buffer.speech_started"
        )
        appended_before = [
            r
            for r in session.recording.received
            if r.type == "input_audio_buffer.append" and r.at <= sent_at
        ]
        # It fired only once 160 ms of the speech had arrived, not at its onset.
        assert len(appended_before) * 20 == 600 + 160


async def test_end_call_tool_follows_the_audio() -> None:
    reply = Reply(audio_ms=200, end_call=True, end_call_arguments={"reason": "done"})
    async with RealtimeSimulator(lambda: script(reply)) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        done, seen = await recv_until(conn, "response.done")
        args = next(e for e in seen if e["type"] == "response.function_call_arguments.done")
        assert args["name"] == "end_call"
        assert args["arguments"] == '{"reason":"done"}'  # compact, as the model writes it
        assert args["call_id"].startswith("call_")
        types = [e["type"] for e in seen]
        assert types.index("response.output_audio.done") < types.index(
            "response.function_call_arguments.done"
        )
        output = done["response"]["output"]
        assert [o["type"] for o in output] == ["message", "function_call"]
        assert output[1]["call_id"] == args["call_id"]
        await send(
            conn,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": args["call_id"],
                    "output": "ok",
                },
            },
        )
        added, _ = await recv_until(conn, "conversation.item.added")
        assert added["item"]["type"] == "function_call_output"


async def test_concurrent_sessions_are_independent() -> None:
    async def one_call(sim: RealtimeSimulator, ms: int) -> int:
        async with sdk_connection(sim) as conn:
            await start_session(conn)
            await send(conn, {"type": "response.create"})
            _, seen = await recv_until(conn, "response.done")
            return sum(delta_bytes(seen, "response.output_audio.delta"))

    lengths = [200, 400, 600, 800, 1000]
    factory_calls = iter(lengths)

    def factory() -> RealtimeScript:
        return script(Reply(audio_ms=next(factory_calls)))

    async with RealtimeSimulator(factory) as sim:
        # Sessions are created in connect order; connect them one at a time, run together.
        results = await asyncio.gather(*(one_call(sim, ms) for ms in lengths))
        assert sorted(results) == [ms * 8 for ms in lengths]
        assert len(sim.sessions) == 5


async def test_second_response_uses_the_next_tone() -> None:
    async with (
        RealtimeSimulator(lambda: script(Reply(audio_ms=100), Reply(audio_ms=100))) as sim,
        sdk_connection(sim) as conn,
    ):
        await start_session(conn)
        for expected_tone in (1, 2):
            await send(conn, {"type": "response.create"})
            _, seen = await recv_until(conn, "response.done")
            delta = next(e for e in seen if e["type"] == "response.output_audio.delta")
            assert signals.detect_tone(base64.b64decode(delta["delta"])[:160]) == expected_tone


async def test_a_response_of_two_audio_items_with_the_first_closed_late() -> None:
    """As newer models send it: item A's `output_audio.done` (and every level of it
    closed) only after item B's first delta; each item on a tone of its own; GA shapes."""
    reply = Reply(
        audio_ms=400,
        transcript="First part here",
        more_items=(Part(600, "Second part follows"),),
        late_item_done=True,
    )
    async with RealtimeSimulator(lambda: script(reply)) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        done, seen = await recv_until(conn, "response.done")

    first, second = (item["id"] for item in done["response"]["output"])
    kinds = [(e["type"], e.get("item_id") or e.get("item", {}).get("id")) for e in seen]
    b_first_delta = kinds.index(("response.output_audio.delta", second))
    assert kinds.index(("response.output_audio.done", first)) > b_first_delta
    assert kinds.index(("response.output_item.done", first)) > b_first_delta
    outputs = [e for e in seen if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in outputs] == [0, 1]
    assert all("object" not in e["item"] for e in outputs)  # GA items carry none
    tones = {
        e["item_id"]: {signals.detect_tone(base64.b64decode(e["delta"])[:160])}
        for e in seen
        if e["type"] == "response.output_audio.delta"
    }
    assert tones[first] != tones[second]
    deltas = [e for e in seen if e["type"] == "response.output_audio_transcript.delta"]
    assert all(isinstance(e.get("obfuscation"), str) and e["obfuscation"] for e in deltas)
    assert [i["status"] for i in done["response"]["output"]] == ["completed", "completed"]
    usage = done["response"]["usage"]
    assert set(usage["output_token_details"]) == {"text_tokens", "audio_tokens"}
    assert sim.sessions[0].conversation.items[second].audio_ms == 600
