"""A call's OpenAI Realtime session, opened through the official SDK (one client a process)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from openai import AsyncOpenAI

from callcore.protocol import realtime as rt
from calls.live.settings import BridgeSettings

logger = logging.getLogger(__name__)


class RealtimeConnection(Protocol):
    """What the bridge uses of the SDK's AsyncRealtimeConnection."""

    async def send_raw(self, data: bytes | str) -> None: ...

    async def recv_bytes(self) -> bytes: ...

    async def close(self, *, code: int = 1000, reason: str = "") -> None: ...


Connector = Callable[[BridgeSettings], Awaitable[RealtimeConnection]]


@functools.cache
def _client(api_key: str, websocket_base_url: str | None) -> AsyncOpenAI:
    # One client per process: creating one per call builds a TLS context each time.
    return AsyncOpenAI(api_key=api_key, websocket_base_url=websocket_base_url)


async def connect_realtime(settings: BridgeSettings) -> RealtimeConnection:
    """Connect a Realtime session; the caller owns (and must close) the connection."""
    manager = _client(settings.openai_api_key, settings.openai_websocket_base_url).realtime.connect(
        model=settings.model,
        # No permessage-deflate: nearly every message is base64 audio, which does not
        # compress, and deflating and inflating 100 messages a second per call cost
        # ~6% of the server's CPU for nothing. (This SDK version already defaults to
        # it; said here so no upgrade turns it back on.)
        websocket_connection_options={"compression": None},
    )
    connection: RealtimeConnection = await manager.enter()
    return connection


async def open_model(connect: Connector, settings: BridgeSettings) -> RealtimeConnection:
    """Connect a Realtime session and configure it (`session.update` is its first event)."""
    connection = await connect(settings)
    try:
        await connection.send_raw(rt.session_update(settings.session))
    except BaseException:
        await close_quietly(connection)
        raise
    return connection


def discard_model(opening: asyncio.Future[RealtimeConnection]) -> None:
    """A session nobody will use (its stream was refused, or ended first): stop or close it."""

    def close_when_open(future: asyncio.Future[RealtimeConnection]) -> None:
        if not future.cancelled() and future.exception() is None:
            task = asyncio.ensure_future(close_quietly(future.result()))
            _background.add(task)
            task.add_done_callback(_background.discard)

    opening.cancel()
    opening.add_done_callback(close_when_open)


async def close_quietly(connection: RealtimeConnection) -> None:
    try:
        await asyncio.wait_for(connection.close(), timeout=2)
    except Exception:  # the model side may already be gone
        logger.debug("realtime close failed", exc_info=True)


# Closes of discarded sessions, kept referenced until they finish.
_background: set[asyncio.Task[None]] = set()
