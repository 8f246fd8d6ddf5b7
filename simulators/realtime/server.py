"""`RealtimeSimulator`: a local WebSocket server that speaks the OpenAI Realtime protocol."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from simulators.realtime.events import BETA_NAMES, GA_NAMES
from simulators.realtime.recording import SessionRecording
from simulators.realtime.script import RealtimeScript, ScriptFactory
from simulators.realtime.session import RealtimeSession
from simulators.waiting import DEFAULT_TIMEOUT_S, Notifier

logger = logging.getLogger(__name__)

T = TypeVar("T")

REALTIME_PATH = "/v1/realtime"


class RealtimeSimulator:
    """Serves Realtime sessions on 127.0.0.1; each connection gets its own script.

    Use as `async with RealtimeSimulator(script_factory=...) as sim:` and point the SDK at
    `sim.websocket_base_url`. Every connection is kept in `sessions`, in connect order.
    """

    def __init__(
        self,
        script_factory: ScriptFactory | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        beta_names: bool = False,
        api_key: str | None = None,
        keep_input_audio: bool = True,
        reuse_port: bool = False,
        handshake_delay_ms: float = 0.0,
    ) -> None:
        self._script_factory: ScriptFactory = script_factory or RealtimeScript
        # Scripts taken at the handshake, until their connection is served.
        self._scripts: dict[ServerConnection, RealtimeScript] = {}
        self._host = host
        self._requested_port = port
        self._names = BETA_NAMES if beta_names else GA_NAMES
        self._api_key = api_key
        self._keep_input_audio = keep_input_audio
        # Several simulator processes may share one port (the kernel spreads connections).
        self._reuse_port = reuse_port
        # A connect to OpenAI crosses the internet: TCP, TLS and the HTTP upgrade are
        # round trips on the way (here on loopback, so they are added as one wait).
        self._handshake_delay_s = handshake_delay_ms / 1000
        self._server: Server | None = None
        self.notifier = Notifier()
        self.sessions: list[RealtimeSession] = []
        self.rejected_handshakes = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def websocket_base_url(self) -> str:
        """What to pass as the SDK's `websocket_base_url`."""
        return f"ws://{self._host}:{self.port}/v1"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self._host,
            self._requested_port,
            process_request=self._check_request,
            max_size=None,
            compression=None,
            reuse_port=self._reuse_port,
        )
        logger.info("realtime sim listening on %s", self.websocket_base_url)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> RealtimeSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self._handshake_delay_s > 0:
            await asyncio.sleep(self._handshake_delay_s)
        path = urlsplit(request.path).path.rstrip("/")
        if path != REALTIME_PATH:
            self.rejected_handshakes += 1
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        authorization = request.headers.get("Authorization", "")
        key = authorization.removeprefix("Bearer ").strip()
        if (
            not authorization.startswith("Bearer ")
            or not key
            or (self._api_key is not None and key != self._api_key)
        ):
            self.rejected_handshakes += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Missing or invalid API key\n")
        # The connection's script is taken now: it may say the service refuses it.
        script = self._script_factory()
        if script.refuse_connection:
            self.rejected_handshakes += 1
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "The server is overloaded. Try again later.\n"
            )
        self._scripts[connection] = script
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        query = parse_qs(urlsplit(connection.request.path).query) if connection.request else {}
        model = query.get("model", ["gpt-realtime"])[0]
        recording = SessionRecording(self.notifier, keep_input_audio=self._keep_input_audio)
        script = self._scripts.pop(connection, None) or self._script_factory()
        session = RealtimeSession(connection, script, self._names, recording, model)
        self.sessions.append(session)
        self.notifier.notify()
        try:
            await session.serve()
        finally:
            self.notifier.notify()

    async def wait_for(
        self, predicate: Callable[[], T | None], timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> T:
        """Return the first truthy `predicate()`, re-checked whenever any session changes."""
        return await self.notifier.wait_for(predicate, timeout_s)

    async def wait_for_session(
        self, index: int = 0, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> RealtimeSession:
        """The `index`-th connection (0-based), once it has connected."""
        return await self.wait_for(
            lambda: self.sessions[index] if len(self.sessions) > index else None, timeout_s
        )
