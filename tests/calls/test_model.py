"""The model uplink's sender: the SDK connection's own socket, or `send_raw` when it has none."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed

from calls.live.model import raw_sender
from simulators.realtime import RealtimeSimulator
from tests.simulators.realtime_helpers import recv_until, sdk_connection


async def test_the_uplink_sends_on_the_sdk_connections_socket() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        send = raw_sender(conn)
        assert send == conn._connection.send  # not through the SDK's reconnection queue
        await send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        updated, _ = await recv_until(conn, "session.updated")
        assert updated["type"] == "session.updated"
        await conn.close()
        with pytest.raises(ConnectionClosed):
            await send(json.dumps({"type": "input_audio_buffer.clear"}))


class _NoSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_raw(self, data: bytes | str) -> None:
        self.sent.append(str(data))

    async def recv_bytes(self) -> bytes:
        return b""

    async def close(self, *, code: int = 1000, reason: str = "") -> None:
        return None


async def test_a_connection_without_a_socket_of_its_own_keeps_send_raw() -> None:
    connection = _NoSocket()
    send = raw_sender(connection)
    await send("{}")
    assert connection.sent == ["{}"]


async def test_a_connection_the_sdk_would_reconnect_keeps_send_raw() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        conn._on_reconnecting = lambda event: None
        assert raw_sender(conn) == conn.send_raw
