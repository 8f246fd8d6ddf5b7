"""The model uplink's senders: the SDK connection's own socket (its `send`, or a frame
written at once), or `send_raw` when it has none."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed

from calls.live.realtime import direct_writer, raw_sender
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


async def test_a_frame_written_at_once_reaches_the_model_like_one_sent() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        write = direct_writer(conn)
        assert write is not None
        update = {
            "type": "session.update",
            "session": {"type": "realtime", "instructions": "é" * 70},
        }
        assert write(json.dumps(update))  # 16-bit length: over 125 bytes
        updated, _ = await recv_until(conn, "session.updated")
        assert updated["session"]["instructions"] == "é" * 70


async def test_a_socket_that_cannot_take_a_frame_at_once_is_left_to_its_send() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        write = direct_writer(conn)
        assert write is not None
        socket = conn._connection
        socket.pause_writing()  # what its transport calls above the high-water mark
        assert not write("{}")
        socket.resume_writing()
        assert write(json.dumps({"type": "input_audio_buffer.clear"}))
        await conn.close()
        assert not write("{}")


async def test_no_direct_writer_without_a_socket_of_its_own_or_with_sdk_reconnects() -> None:
    assert direct_writer(_NoSocket()) is None
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        conn._on_reconnecting = lambda event: None
        assert direct_writer(conn) is None
