"""The simulators' WebSocket client: a handshake answered after the opener gave up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simulators.wsclient import WebSocketClient


async def test_a_handshake_answered_after_the_timeout_opens_nothing_and_raises_nothing() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    answer = asyncio.Event()
    closed = asyncio.Event()

    async def slow_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await answer.wait()  # answers once the client has given up
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            await reader.read()  # until the client's side is gone
        except ConnectionError:
            pass  # gone already (reset)
        finally:
            closed.set()

    server = await asyncio.start_server(slow_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError):
            await WebSocketClient.connect(f"ws://127.0.0.1:{port}/", headers={}, timeout_s=0.05)
        answer.set()
        await asyncio.wait_for(closed.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
        loop.set_exception_handler(None)
    assert errors == []
