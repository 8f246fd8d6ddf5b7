"""Test doubles on real sockets: a scripted Realtime server and a Twilio stream driver.

`FakeRealtime` is a WebSocket server the official SDK connects to; each test
decides exactly which server events to send and when, and reads what the
bridge sent. `TwilioStream` drives the project's real ASGI application through
Channels' WebsocketCommunicator, as Twilio would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from channels.testing import WebsocketCommunicator
from websockets.asyncio.server import ServerConnection, serve

from callcore.outputs import BargeIn
from callcore.records import BargeInFigures, ItemHeard
from calls.frontdoor.signatures import stream_url
from calls.frontdoor.tokens import mint_stream_token
from calls.live.feed import LiveFeed
from calls.models import CallSession
from simulators import signals
from tests.conftest import twilio_signature

SILENT_FRAME = b"\xff" * 160

TIMEOUT = 5


class FakeSession:
    """One Realtime connection as the server sees it."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self.audio_in = bytearray()
        self.closed = asyncio.Event()
        request = ws.request
        self.extensions = request.headers.get("Sec-WebSocket-Extensions") if request else None
        self._changed = asyncio.Condition()

    async def serve(self) -> None:
        try:
            await self.send({"type": "session.created", "session": {"id": "sess_1"}})
            async for raw in self.ws:
                event = json.loads(raw)
                if event.get("type") == "input_audio_buffer.append":
                    self.audio_in += base64.b64decode(event["audio"])
                async with self._changed:
                    self.received.append(event)
                    self._changed.notify_all()
        finally:
            self.closed.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.received if event.get("type") == kind]

    async def expect(self, kind: str, count: int = 1) -> dict[str, Any]:
        """The `count`-th received event of `kind` (awaits it)."""
        async with asyncio.timeout(TIMEOUT), self._changed:
            await self._changed.wait_for(lambda: len(self.of_type(kind)) >= count)
            return self.of_type(kind)[count - 1]

    async def expect_audio(self, size: int) -> bytes:
        async with asyncio.timeout(TIMEOUT), self._changed:
            await self._changed.wait_for(lambda: len(self.audio_in) >= size)
            return bytes(self.audio_in)

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    # Scripting helpers in the GA protocol.

    async def response_created(self, response_id: str) -> None:
        await self.send({"type": "response.created", "response": {"id": response_id}})

    async def audio(self, response_id: str, item_id: str, audio: bytes, beta: bool = False) -> None:
        kind = "response.audio.delta" if beta else "response.output_audio.delta"
        await self.send(
            {
                "type": kind,
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(audio).decode(),
            }
        )

    async def audio_done(self, response_id: str, item_id: str) -> None:
        await self.send(
            {"type": "response.output_audio.done", "response_id": response_id, "item_id": item_id}
        )

    async def response_done(
        self, response_id: str, status: str = "completed", output: list[Any] | None = None
    ) -> None:
        await self.send(
            {
                "type": "response.done",
                "response": {"id": response_id, "status": status, "output": output or []},
            }
        )

    async def speech_stopped(self, words: str | None = None) -> None:
        """The caller's speech ended: the service commits it, then (`words`) transcribes it."""
        await self.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 0, "item_id": "item_user"}
        )
        if words is not None:
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": "item_user",
                    "content_index": 0,
                    "transcript": words,
                }
            )

    async def speech_started(self, audio_start_ms: int = 0) -> None:
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": "item_user",
            }
        )


class FakeRealtime:
    """A Realtime server on 127.0.0.1 whose every move the test scripts."""

    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []
        # Set: handshakes beyond this many sessions are refused (HTTP 503).
        self.accept_sessions: int | None = None
        self.refused = 0
        # Set: handshakes wait for it (a session that takes its time to open);
        # `handshake_waiting` is set once one does.
        self.hold_handshakes: asyncio.Event | None = None
        self.handshake_waiting = asyncio.Event()
        self._new_session = asyncio.Condition()
        self._server: Any = None
        self.port = 0

    async def __aenter__(self) -> FakeRealtime:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._admit)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), TIMEOUT)

    @property
    def websocket_base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    async def _admit(self, ws: ServerConnection, request: Any) -> Any:
        if self.hold_handshakes is not None:
            self.handshake_waiting.set()
            await self.hold_handshakes.wait()
        if self.accept_sessions is not None and len(self.sessions) >= self.accept_sessions:
            self.refused += 1
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "no capacity\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        session = FakeSession(ws)
        async with self._new_session:
            self.sessions.append(session)
            self._new_session.notify_all()
        with contextlib.suppress(Exception):
            await session.serve()

    async def session(self, index: int = 0) -> FakeSession:
        async with asyncio.timeout(TIMEOUT), self._new_session:
            await self._new_session.wait_for(lambda: len(self.sessions) > index)
            return self.sessions[index]


@dataclass
class TwilioStream:
    """Plays Twilio's part of a media stream against the real ASGI application."""

    communicator: WebsocketCommunicator
    call_sid: str
    stream_sid: str = "MZ" + "5" * 32
    audio_out: bytearray = field(default_factory=bytearray)
    marks: list[str] = field(default_factory=list)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    sequence: int = 0

    @classmethod
    def open(
        cls,
        call_sid: str,
        signature: str | None = None,
        gone: asyncio.Event | None = None,
        slow_clear_s: float = 0.0,
    ) -> TwilioStream:
        """The stream to the real app; once `gone` is set, the app's sends fail as
        Uvicorn's do for a client that has disconnected; a `clear` takes `slow_clear_s`
        to send (a socket whose buffer is full)."""
        from config.asgi import application

        signature = twilio_signature(stream_url(), {}) if signature is None else signature
        headers = [(b"x-twilio-signature", signature.encode())] if signature else []
        app: Any = application if gone is None else _sends_fail_once(application, gone)
        if slow_clear_s:
            app = _slow_clears(app, slow_clear_s)
        communicator = WebsocketCommunicator(app, "/twilio/media-stream/", headers=headers)
        return cls(communicator, call_sid)

    async def send(self, message: dict[str, Any]) -> None:
        self.sequence += 1
        await self.communicator.send_json_to({"sequenceNumber": str(self.sequence), **message})

    async def start(
        self, token: str | None = None, media_format: dict[str, Any] | None = None
    ) -> None:
        connected, _ = await self.communicator.connect(timeout=TIMEOUT)
        assert connected
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        token = mint_stream_token(self.call_sid, time.time()) if token is None else token
        await self.send(
            {
                "event": "start",
                "streamSid": self.stream_sid,
                "start": {
                    "streamSid": self.stream_sid,
                    "accountSid": "AC" + "0" * 32,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": {"token": token},
                    "mediaFormat": media_format
                    or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )

    async def media(self, audio: bytes, timestamp_ms: int = 0) -> None:
        await self.send(
            {
                "event": "media",
                "streamSid": self.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": str(self.sequence),
                    "timestamp": str(timestamp_ms),
                    "payload": base64.b64encode(audio).decode(),
                },
            }
        )

    async def voice(self, ms: int) -> None:
        """`ms` of the caller's voice, then a little silence, a frame every 20 ms as Twilio
        sends them (the bridge dates a sound by its frames' arrival)."""
        frames = ms // 20
        for n in range(frames + 4):
            voiced = n < frames
            audio = signals.speech_audio(n * 160, 160, frames * 160) if voiced else SILENT_FRAME
            await self.media(audio)
            await asyncio.sleep(0.02)

    async def echo_mark(self, name: str) -> None:
        await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def receive(self) -> dict[str, Any]:
        """The next message from the application, recorded with its arrival time."""
        output = await self.communicator.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            raise ConnectionClosedByApp(output.get("code", 1000))
        message: dict[str, Any] = json.loads(output["text"])
        self.events.append((time.monotonic(), message))
        if message["event"] == "media":
            self.audio_out += base64.b64decode(message["media"]["payload"])
        elif message["event"] == "mark":
            self.marks.append(message["mark"]["name"])
        return message

    async def receive_until(self, event: str) -> dict[str, Any]:
        while True:
            message = await self.receive()
            if message["event"] == event:
                return message

    async def receive_audio(self, size: int) -> None:
        while len(self.audio_out) < size:
            await self.receive()

    async def wait_closed(self) -> int:
        """Read until the application closes the socket; returns the close code."""
        while True:
            try:
                await self.receive()
            except ConnectionClosedByApp as closed:
                return closed.code


def _slow_clears(application: Any, delay_s: float) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def server_send(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.send" and '"event":"clear"' in message["text"]:
                await asyncio.sleep(delay_s)  # the send itself takes this long
            await send(message)

        await application(scope, receive, server_send)

    return app


def _sends_fail_once(application: Any, gone: asyncio.Event) -> Any:
    from uvicorn.protocols.utils import ClientDisconnected

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def server_send(message: dict[str, Any]) -> None:
            if gone.is_set() and message["type"] == "websocket.send":
                raise ClientDisconnected()
            await send(message)

        await application(scope, receive, server_send)

    return app


class ConnectionClosedByApp(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@database_sync_to_async
def make_call(call_sid: str) -> CallSession:
    return CallSession.objects.create(call_sid=call_sid, from_number="+15550001111")


class FailingChannelLayer(InMemoryChannelLayer):
    """An in-memory layer whose receive fails once `fail` is set, like a Redis outage."""

    fail: asyncio.Event | None = None

    async def receive(self, channel: str) -> dict[str, Any]:
        assert FailingChannelLayer.fail is not None
        await FailingChannelLayer.fail.wait()
        raise ConnectionError("channel layer unavailable")


def sample_barge_in(at: float) -> BargeIn:
    """A barge-in as the core hands it over: its clear not yet sent (no reaction yet)."""
    return BargeIn(
        clear='{"event":"clear","streamSid":"MZ1"}',
        at=at,
        playout_status="playout_active_4300ms",
        figures=BargeInFigures(
            response_id="r1",
            item_id="i1",
            playout_remaining_ms=4300,
            pending_ms=3000,
            unplayed_ms=400,
            audio_end_ms=1200,
            response_cancelled=False,
            speech_onset_offset_ms=1000,
            heard_at_onset_ms=950,
            heard_text="Hello there",
            cut_text="and welcome",
        ),
        evidence={"speaking_reason": "playout", "link_rtt_ms": 100},
        deleted_item_ids=("i0",),
        items=(ItemHeard("i1", "truncated", 1200, "Hello there"), ItemHeard("i0", "deleted", 0)),
        generation=2,
        pending_frames=150,
        unplayed_frames=20,
    )


class WatchedFeed(LiveFeed):
    """The live view's feed, telling a test when a call's stream has started (its
    bridge is then in the process's roster): an event to await, not a poll."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self._published = asyncio.Event()

    def publish(self, event: dict[str, Any]) -> None:
        super().publish(event)
        self.events.append(event)
        self._published.set()

    async def started(self, call_sid: str) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not any(
                e["kind"] == "stream_started" and e["call_sid"] == call_sid for e in self.events
            ):
                self._published.clear()
                await self._published.wait()


async def caller_says_stop(twilio: TwilioStream, model: FakeSession) -> None:
    """A short "stop" over the AI: the caller's voice, the service's speech events and its
    words; the bridge judges it an interruption by its words."""
    await twilio.voice(160)  # short: over before the bridge would pause the answer
    await model.speech_started()
    await model.speech_stopped("Stop.")
