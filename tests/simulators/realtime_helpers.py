"""Helpers for driving the Realtime simulator with the official SDK."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection

from simulators import mulaw, signals
from simulators.realtime import RealtimeSimulator

PCMU_SESSION: dict[str, Any] = {
    "type": "realtime",
    "instructions": "Be brief.",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
    },
}


@asynccontextmanager
async def sdk_connection(sim: RealtimeSimulator) -> AsyncIterator[AsyncRealtimeConnection]:
    client = AsyncOpenAI(api_key="test", websocket_base_url=sim.websocket_base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        yield conn


async def send(conn: AsyncRealtimeConnection, event: dict[str, Any]) -> None:
    await conn.send_raw(json.dumps(event))


async def recv(conn: AsyncRealtimeConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await conn.recv_bytes())
    return event


async def recv_until(
    conn: AsyncRealtimeConnection, event_type: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Receive until `event_type`; return it and every event received before it."""
    seen: list[dict[str, Any]] = []
    while True:
        event = await recv(conn)
        if event["type"] == event_type:
            return event, seen
        seen.append(event)


def transcribing_session(*, create_response: bool, interrupt_response: bool) -> dict[str, Any]:
    """`PCMU_SESSION` with input transcription, and the two turn detection choices given."""
    session = copy.deepcopy(PCMU_SESSION)
    session["audio"]["input"]["transcription"] = {"model": "gpt-4o-mini-transcribe"}
    detection = session["audio"]["input"]["turn_detection"]
    detection["create_response"] = create_response
    detection["interrupt_response"] = interrupt_response
    return session


async def start_session(
    conn: AsyncRealtimeConnection, session: dict[str, Any] | None = None
) -> dict[str, Any]:
    created = await recv(conn)
    assert created["type"] == "session.created"
    await send(conn, {"type": "session.update", "session": session or PCMU_SESSION})
    updated, _ = await recv_until(conn, "session.updated")
    return updated


def delta_bytes(events: list[dict[str, Any]], event_type: str) -> list[int]:
    return [len(base64.b64decode(e["delta"])) for e in events if e["type"] == event_type]


async def append_audio(conn: AsyncRealtimeConnection, audio: bytes) -> None:
    for i in range(0, len(audio), signals.FRAME_BYTES):
        chunk = base64.b64encode(audio[i : i + signals.FRAME_BYTES]).decode("ascii")
        await send(conn, {"type": "input_audio_buffer.append", "audio": chunk})


def utterance(silence_before_ms: int, speech_ms: int, silence_after_ms: int) -> bytes:
    n = speech_ms * signals.BYTES_PER_MS
    return (
        mulaw.silence(silence_before_ms * 8)
        + signals.speech_audio(0, n, n)
        + mulaw.silence(silence_after_ms * 8)
    )
