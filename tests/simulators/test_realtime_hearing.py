"""What the Realtime stand-in hears (the words in the caller's audio) and what its audio tells."""

from __future__ import annotations

import base64
import random
from collections import defaultdict
from typing import Any

from simulators import position, signals
from simulators.realtime import Part, RealtimeScript, RealtimeSimulator, Reply
from simulators.twilio import CallerScript, Noise, Silence, Speech
from simulators.twilio.microphone import Microphone
from simulators.twilio.script import Segment
from tests.simulators.realtime_helpers import (
    append_audio,
    recv,
    recv_until,
    sdk_connection,
    send,
    start_session,
    transcribing_session,
)

WORDS = "Grüß Gott, I'd like the blue one — 青い"
COMPLETED = "conversation.item.input_audio_transcription.completed"


def caller_audio(*segments: Segment) -> bytes:
    """What the stand-in caller's microphone sends for these segments."""
    mic = Microphone(CallerScript(segments=segments))
    frames = []
    while (frame := mic.tick(0.0, {}).frame) is not None:
        frames.append(frame)
    return b"".join(frames)


async def test_the_service_transcribes_the_words_it_hears_in_each_turn() -> None:
    audio = caller_audio(
        Silence(200),
        Speech(800, text=WORDS),
        Silence(700),
        Noise(300, "cough"),
        Silence(700),
        Speech(400),  # no words in the audio: the script's words for the turn
        Silence(700),
        Speech(400, text="yes"),
        Silence(200),  # too short a pause to end the turn
        Speech(400, text="go on"),
        Silence(700),
    )
    scripted = RealtimeScript(caller_words=("one", "two", "three", "four"))
    session = transcribing_session(create_response=False, interrupt_response=True)
    async with RealtimeSimulator(lambda: scripted) as sim, sdk_connection(sim) as conn:
        await start_session(conn, session)
        await append_audio(conn, audio)
        heard = []
        for _ in range(4):
            completed, seen = await recv_until(conn, COMPLETED)
            [delta] = [e for e in seen if e["type"].endswith("transcription.delta")]
            assert delta["delta"] == completed["transcript"]
            heard.append(completed["transcript"])

    assert heard == [WORDS, "", "three", "yes go on"]


async def test_with_neither_response_nor_interruption_the_service_only_listens() -> None:
    scripted = RealtimeScript(replies=(Reply(audio_ms=3000),), speed=4.0)
    session = transcribing_session(create_response=False, interrupt_response=False)
    async with RealtimeSimulator(lambda: scripted) as sim, sdk_connection(sim) as conn:
        await start_session(conn, session)
        await send(conn, {"type": "response.create"})
        await recv_until(conn, "response.output_audio.delta")
        await append_audio(conn, caller_audio(Speech(400, text="hold on"), Silence(600)))
        events: list[dict[str, Any]] = []
        while not {"response.done", COMPLETED} <= {e["type"] for e in events}:
            events.append(await recv(conn))

    types = [e["type"] for e in events]
    heard = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        COMPLETED,
    ]
    assert [t for t in types if t in heard] == heard
    assert next(e for e in events if e["type"] == COMPLETED)["transcript"] == "hold on"
    done = next(e for e in events if e["type"] == "response.done")
    assert done["response"]["status"] == "completed"  # not cancelled by the speech
    assert "response.created" not in types
    server = sim.sessions[0]
    assert len(server.responses) == 1
    assert server.responses[0].cancel_reason is None


async def test_every_sample_of_an_answer_says_where_it_is_in_its_item() -> None:
    scripted = RealtimeScript(replies=(Reply(audio_ms=1500, more_items=(Part(700),)),), speed=20)
    async with RealtimeSimulator(lambda: scripted) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        _, seen = await recv_until(conn, "response.done")

    items: dict[str, bytes] = defaultdict(bytes)
    for event in seen:
        if event["type"] == "response.output_audio.delta":
            items[event["item_id"]] += base64.b64decode(event["delta"])
    assert [len(audio) for audio in items.values()] == [1500 * 8, 700 * 8]
    rng = random.Random(2)
    for number, audio in enumerate(items.values(), start=1):
        for offset in rng.sample(range(len(audio) - 24), 100):
            assert position.read(audio[offset : offset + 24]) == offset
        tone = signals.tone_for_item(1, number)
        frames = range(0, len(audio), 160)
        assert {signals.detect_tone(audio[i : i + 160]) for i in frames} == {tone}
    assert len(sim.sessions) == 1
