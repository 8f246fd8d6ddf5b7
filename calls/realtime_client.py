"""The OpenAI Realtime connection: one shared SDK client per process."""

from __future__ import annotations

import functools
from typing import Protocol

from openai import AsyncOpenAI


class RealtimeConnection(Protocol):
    """What the bridge uses of the SDK's AsyncRealtimeConnection."""

    async def send_raw(self, data: bytes | str) -> None: ...

    async def recv_bytes(self) -> bytes: ...

    async def close(self, *, code: int = 1000, reason: str = "") -> None: ...


@functools.cache
def _client(api_key: str, websocket_base_url: str | None) -> AsyncOpenAI:
    # One client per process: creating one per call builds a TLS context each time.
    return AsyncOpenAI(api_key=api_key, websocket_base_url=websocket_base_url)


async def open_realtime(
    *, api_key: str, websocket_base_url: str | None, model: str
) -> RealtimeConnection:
    """Connect a Realtime session; the caller owns (and must close) the connection."""
    manager = _client(api_key, websocket_base_url).realtime.connect(
        model=model,
        # No permessage-deflate: nearly every message is base64 audio, which does not
        # compress, and deflating and inflating 100 messages a second per call cost
        # ~6% of the server's CPU for nothing. (This SDK version already defaults to
        # it; said here so no upgrade turns it back on.)
        websocket_connection_options={"compression": None},
    )
    connection: RealtimeConnection = await manager.enter()
    return connection
