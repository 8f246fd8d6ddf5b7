"""A call's OpenAI Realtime session, opened through the official SDK (one client a process)."""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from openai import AsyncOpenAI
from websockets.asyncio.connection import Connection
from websockets.protocol import State
from websockets.uri import get_proxy, parse_uri

from callcore.protocol import realtime as rt
from calls.live.config import BridgeConfig
from calls.live.wsframe import client_text_frame

logger = logging.getLogger(__name__)
T = TypeVar("T")


class RealtimeConnection(Protocol):
    """What the bridge uses of the SDK's AsyncRealtimeConnection."""

    async def send_raw(self, data: bytes | str) -> None: ...

    async def recv_bytes(self) -> bytes: ...

    async def close(self, *, code: int = 1000, reason: str = "") -> None: ...


@functools.cache
def _client(api_key: str, websocket_base_url: str | None) -> AsyncOpenAI:
    # One client per process: creating one per call builds a TLS context each time.
    return AsyncOpenAI(api_key=api_key, websocket_base_url=websocket_base_url)


@functools.cache
def _proxy(websocket_base_url: str | None) -> str | None:
    # The proxy (HTTPS_PROXY and the like) is looked up once per process: websockets
    # would otherwise scan the whole environment at every call's connect.
    uri = parse_uri((websocket_base_url or DEFAULT_WEBSOCKET_BASE_URL).rstrip("/") + "/realtime")
    return get_proxy(uri)


DEFAULT_WEBSOCKET_BASE_URL = "wss://api.openai.com/v1"


def load_client(config: BridgeConfig) -> None:
    """Build the process's client now, with the SDK's Realtime modules (about 230).

    The SDK imports those at the first session; loaded at start-up instead, the
    first call does not wait for them, and the server can freeze them out of the
    garbage collector's sight with the rest of what lives as long as the process.
    """
    _client(config.openai_api_key, config.openai_websocket_base_url).realtime  # noqa: B018
    _proxy(config.openai_websocket_base_url)
    # And websockets' client side, which the SDK imports at its first connect.
    importlib.import_module("websockets.asyncio.client")
    importlib.import_module("websockets.sync.client")


async def connect_realtime(config: BridgeConfig) -> RealtimeConnection:
    """Connect a Realtime session; the caller owns (and must close) the connection."""
    base_url = config.openai_websocket_base_url
    # Passed through to websockets' connect (the SDK declares only some of its options).
    options: Any = {
        # No permessage-deflate: nearly every message is base64 audio, which does not
        # compress, and deflating and inflating 100 messages a second per call cost
        # ~6% of the server's CPU for nothing. (This SDK version already defaults to
        # it; said here so no upgrade turns it back on.)
        "compression": None,
        "proxy": _proxy(base_url),
        # A session that stops answering pings is closed within interval + timeout
        # + close_timeout (then replaced); websockets' defaults would take 50 s. The
        # close handshake of a peer that no longer reads is not worth waiting for.
        "ping_interval": config.model_ping_interval_s,
        "ping_timeout": config.model_ping_timeout_s,
        "close_timeout": 1.0,
    }
    manager = _client(config.openai_api_key, base_url).realtime.connect(
        model=config.model, websocket_connection_options=options
    )
    connection: RealtimeConnection = await manager.enter()
    return connection


def _sdk_reconnects(connection: RealtimeConnection) -> bool:
    """Whether the SDK would reconnect this connection itself (this service never asks it to)."""
    return getattr(connection, "_on_reconnecting", None) is not None


def raw_sender(connection: RealtimeConnection) -> Callable[[str], Awaitable[None]]:
    """How the uplink sends a client event on `connection`: the cheapest faithful way.

    The SDK's `send_raw` passes every message through its reconnection send
    queue (admission checks and a task lookup per message, 25 times a second
    per call) before calling the socket's own `send`. This service never lets
    the SDK reconnect (a lost session is replaced by the bridge, with the
    conversation carried over), so that queue stays empty and the socket's
    `send`, which raises the same `ConnectionClosed`, is what `send_raw` ends
    up doing. A connection without one (a future SDK, a test double) keeps
    `send_raw`.
    """
    send = getattr(_socket(connection), "send", None)
    if not _sdk_reconnects(connection) and callable(send):
        return send  # type: ignore[no-any-return]
    return connection.send_raw


def direct_writer(connection: RealtimeConnection) -> Callable[[str], bool] | None:
    """A synchronous send for the common case, beside `raw_sender`'s: None if the
    connection has no websockets socket of its own (or the SDK would reconnect it).

    The writer puts a client event on the socket's transport at once, as one
    frame built like the socket's own (`calls.live.wsframe`), and returns True;
    or does nothing and returns False whenever the socket's `send` would have
    to wait or raise: the connection not open (closing, closed), its
    transport pushing back (flow control), or a fragmented message under way.
    The caller then sends through `raw_sender`, which waits or raises as it
    should. Caller audio goes this way from the task that received it: no
    queue, no second task woken, no per-message context manager (an eighth
    of the server's CPU at 100 calls went to the uplink's sends).

    Frames written this way and by the socket's `send` never interleave: each
    is one `transport.write`, and the bridge writes directly only when no
    event is waiting for its uplink task.
    """
    ws = _socket(connection)
    if _sdk_reconnects(connection) or not isinstance(ws, Connection):
        return None

    def write(text: str) -> bool:
        transport = ws.transport
        if (
            ws.protocol.state is not State.OPEN
            or ws.paused
            or ws.fragmented_send_waiter is not None
            or transport.is_closing()
        ):
            return False
        try:
            transport.write(client_text_frame(text.encode()))
        except Exception:
            # The socket's own `send` will say what is wrong, as it always has.
            logger.debug("direct write refused", exc_info=True)
            return False
        return True

    return write


@dataclass(frozen=True, slots=True)
class OpenedModel:
    """A configured Realtime session, how long connecting to it took (ms), and
    whether it was opened ahead, at the voice webhook (`calls.live.preopen`)."""

    connection: RealtimeConnection
    connect_ms: float
    ahead: bool = False


# A connection under way (`connect_timed`): the connection, and its connect time in ms.
Connecting = asyncio.Future[tuple[RealtimeConnection, float]]


async def connect_timed(config: BridgeConfig) -> tuple[RealtimeConnection, float]:
    """A connected (not yet configured) session, and how long connecting took (ms)."""
    started = time.monotonic()
    connection = await connect_realtime(config)
    return connection, (time.monotonic() - started) * 1000


async def open_session(
    config: BridgeConfig,
    *,
    ahead: bool = False,
    connecting: Awaitable[tuple[RealtimeConnection, float]] | None = None,
) -> OpenedModel:
    """Connect a call's Realtime session through the official SDK and configure it
    (`session.update` is its first event): how every caller opens one.

    `connecting`: a connection begun before the call's agent was known
    (`connect_timed`); the session is configured for `config`'s agent on it.
    """
    connection, connect_ms = await (connecting or connect_timed(config))
    try:
        await connection.send_raw(rt.session_update(config.session))
    except BaseException:
        await close_quietly(connection)
        raise
    return OpenedModel(connection, connect_ms, ahead)


def is_open(connection: RealtimeConnection) -> bool:
    """Whether the session's socket is still open (a connection with no socket
    to ask, such as a test double, counts as open)."""
    state = getattr(_socket(connection), "state", None)
    return state is None or state is State.OPEN


def _socket(connection: RealtimeConnection) -> Any:
    """The SDK connection's own websocket (a private attribute: None where absent)."""
    return getattr(connection, "_connection", None)


def discard_model(opening: asyncio.Future[OpenedModel]) -> None:
    """A session nobody will use (its stream was refused, or ended first): stop or close it."""
    _discard(opening, lambda opened: opened.connection)


def discard_connecting(connecting: Connecting) -> None:
    """A connection begun (`connect_timed`) for a stream that was refused: stop or close it."""
    _discard(connecting, lambda connected: connected[0])


def _discard(future: asyncio.Future[T], connection_of: Callable[[T], RealtimeConnection]) -> None:
    def close_when_open(done: asyncio.Future[T]) -> None:
        if not done.cancelled() and done.exception() is None:
            task = asyncio.ensure_future(close_quietly(connection_of(done.result())))
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    future.cancel()
    future.add_done_callback(close_when_open)


async def close_quietly(connection: RealtimeConnection) -> None:
    try:
        await asyncio.wait_for(connection.close(), timeout=2)
    except Exception:  # the model side may already be gone
        logger.debug("realtime close failed", exc_info=True)


# Closes of discarded sessions, kept referenced until they finish (a task the event
# loop holds only weakly could otherwise be collected half-way).
_closing: set[asyncio.Task[None]] = set()
