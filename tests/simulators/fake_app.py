"""A tiny stand-in for the project's server, to test the Twilio caller: checks signatures."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from simulators import signals
from simulators.waiting import Notifier

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_BASE_URL = "https://calls.example.test"
STREAM_URL = "wss://calls.example.test/twilio/media-stream/"
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
    f'<Stream url="{STREAM_URL}"><Parameter name="token" value="tok-123"/>'
    '<Parameter name="lang" value="en"/></Stream></Connect></Response>'
)

Behaviour = Callable[["FakeApp", ServerConnection], Awaitable[None]]


@dataclass
class HttpHit:
    path: str
    params: dict[str, str]
    signature_valid: bool


@dataclass
class FakeApp:
    """HTTP webhook + media-stream WebSocket, recording what the caller sent."""

    behaviour: Behaviour
    twiml: str = TWIML
    answers: dict[str, str] = field(default_factory=dict)
    """TwiML answered (200) to other signed POSTs, by path (an action URL's)."""
    http: list[HttpHit] = field(default_factory=list)
    streams: int = 0
    """Media-stream connections accepted."""
    ws_signature_valid: bool | None = None
    inbox: list[tuple[float, Any]] = field(default_factory=list)
    close_error: ConnectionClosed | None = None
    closed: bool = False
    notifier: Notifier = field(default_factory=Notifier)
    _http_server: asyncio.Server | None = None
    _ws_server: Server | None = None

    @property
    def http_base_url(self) -> str:
        assert self._http_server is not None
        return f"http://127.0.0.1:{self._http_server.sockets[0].getsockname()[1]}"

    @property
    def ws_base_url(self) -> str:
        assert self._ws_server is not None
        return f"http://127.0.0.1:{self._ws_server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> FakeApp:
        self._http_server = await asyncio.start_server(self._http, "127.0.0.1", 0)
        self._ws_server = await serve(
            self._ws, "127.0.0.1", 0, process_request=self._check_handshake
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._http_server is not None
        assert self._ws_server is not None
        self._ws_server.close()
        await self._ws_server.wait_closed()
        self._http_server.close()
        await self._http_server.wait_closed()

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in header_lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        path = request_line.split(" ")[1]
        params = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
        valid = RequestValidator(AUTH_TOKEN).validate(
            PUBLIC_BASE_URL + path, params, headers.get("x-twilio-signature", "")
        )
        self.http.append(HttpHit(path, params, bool(valid)))
        if not valid:
            status, text = "403 Forbidden", ""
        elif path == "/twilio/voice/":
            status, text = "200 OK", self.twiml
        elif path in self.answers:
            status, text = "200 OK", self.answers[path]
        else:
            status, text = "204 No Content", ""
        payload = text.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        signature = request.headers.get("X-Twilio-Signature", "")
        self.ws_signature_valid = bool(
            RequestValidator(AUTH_TOKEN).validate(STREAM_URL, {}, signature)
        )
        if not self.ws_signature_valid:
            return connection.respond(HTTPStatus.FORBIDDEN, "bad signature\n")
        return None

    async def _ws(self, ws: ServerConnection) -> None:
        self.streams += 1
        reader = asyncio.create_task(self._read(ws))
        try:
            await self.behaviour(self, ws)
            await reader
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                try:
                    data: Any = json.loads(message)
                except ValueError:
                    data = message
                self.inbox.append((time.monotonic(), data))
                self.notifier.notify()
        except ConnectionClosed as exc:
            self.close_error = exc
        self.closed = True
        self.notifier.notify()

    async def stream_sid(self) -> str:
        return str((await self.wait_event("start"))["streamSid"])

    def events(self, event: str) -> list[dict[str, Any]]:
        return [m for _, m in self.inbox if isinstance(m, dict) and m.get("event") == event]

    async def wait_event(self, event: str, count: int = 1) -> dict[str, Any]:
        """The `count`-th message of this event type, once received."""
        return await self.notifier.wait_for(
            lambda: self.events(event)[count - 1] if len(self.events(event)) >= count else None
        )


def media(sid: str, tone: int, ms: int, total_ms: int | None = None, start_ms: int = 0) -> str:
    total = (total_ms or ms) * 8
    audio = signals.tone_audio(tone, start_ms * 8, ms * 8, total)
    payload = base64.b64encode(audio).decode("ascii")
    return json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}})


def mark(sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": name}})


def clear(sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": sid})
