"""Realtime simulator control events: cancel, interruption, truncate, delete, errors, names."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import ConnectionClosedError

from simulators.realtime import Disconnect, RealtimeScript, RealtimeSimulator, Reply, SendError
from tests.simulators.realtime_helpers import (
    append_audio,
    delta_bytes,
    recv,
    recv_until,
    sdk_connection,
    send,
    start_session,
    utterance,
)

LONG = RealtimeScript(replies=(Reply(audio_ms=3000),), speed=4.0)


async def test_cancel_sends_a_few_late_deltas_then_cancelled_done() -> None:
    async with RealtimeSimulator(lambda: LONG) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        await recv_until(conn, "response.output_audio.delta")
        await send(conn, {"type": "response.cancel"})
        done, seen = await recv_until(conn, "response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "client_cancelled"
        assert 2 <= len(delta_bytes(seen, "response.output_audio.delta")) <= 4
        recording = sim.sessions[0].recording
        cancel_at = next(r.at for r in recording.received if r.type == "response.cancel")
        late = [r for r in recording.sent if r.at >= cancel_at and "audio.delta" in r.type]
        assert len(late) == 2
        item = sim.sessions[0].responses[0]
        assert item.audio_ms_sent < 3000


async def test_cancel_without_active_response_is_an_error() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.cancel", "event_id": "evt_1"})
        error = await recv(conn)
        assert error["type"] == "error"
        assert error["error"]["code"] == "response_cancel_not_active"
        assert error["error"]["event_id"] is None  # as the service leaves it


async def test_speech_interrupts_a_generating_response() -> None:
    async with RealtimeSimulator(lambda: LONG) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        await recv_until(conn, "response.output_audio.delta")
        await append_audio(conn, utterance(0, 400, 0))
        await recv_until(conn, "input_audio_buffer.speech_started")
        done, _ = await recv_until(conn, "response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"


async def test_speech_after_all_deltas_were_sent_cancels_nothing() -> None:
    scripted = RealtimeScript(replies=(Reply(audio_ms=200), Reply(audio_ms=100)))
    async with RealtimeSimulator(lambda: scripted) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        first, _ = await recv_until(conn, "response.done")
        await append_audio(conn, utterance(0, 400, 600))
        await recv_until(conn, "input_audio_buffer.speech_started")
        second, _ = await recv_until(conn, "response.done")
        assert first["response"]["status"] == "completed"
        assert second["response"]["status"] == "completed"
        assert second["response"]["id"] != first["response"]["id"]


async def test_truncates_accepted_and_refused_as_the_service_does() -> None:
    scripted = RealtimeScript(replies=(Reply(audio_ms=1000),))
    async with RealtimeSimulator(lambda: scripted) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        done, _ = await recv_until(conn, "response.done")
        item_id = done["response"]["output"][0]["id"]

        async def truncate(ms: int, target: str = item_id) -> dict[str, object]:
            await send(
                conn,
                {
                    "type": "conversation.item.truncate",
                    "item_id": target,
                    "content_index": 0,
                    "audio_end_ms": ms,
                },
            )
            return await recv(conn)

        ok = await truncate(640)
        assert ok == {**ok, "type": "conversation.item.truncated", "audio_end_ms": 640}
        # The refusals as reported live: `param` and `event_id` null, lengths in 50 ms steps.
        too_long = await truncate(1021)
        assert too_long["error"] == {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "Audio content of 1000ms is already shorter than 1021ms",
            "param": None,
            "event_id": None,
        }
        negative = await truncate(-11)
        assert negative["error"]["code"] == "integer_below_min_value"
        assert negative["error"]["param"] == "audio_end_ms"
        assert "but got -11 instead" in negative["error"]["message"]
        unknown = await truncate(100, "item_nope")
        assert unknown["error"]["code"] == "item_truncate_invalid_item_id"
        zero = await truncate(0)  # a length the service itself uses
        assert zero == {**zero, "type": "conversation.item.truncated", "audio_end_ms": 0}
        assert sim.sessions[0].conversation.items[item_id].truncated_at_ms == 0


async def test_a_truncate_before_any_audio_is_an_unsupported_content_type() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "input_audio_buffer.commit"})
        committed, _ = await recv_until(conn, "input_audio_buffer.committed")
        user_item = committed["item_id"]
        await send(
            conn,
            {
                "type": "conversation.item.truncate",
                "event_id": "evt_9",
                "item_id": user_item,
                "content_index": 0,
                "audio_end_ms": 0,
            },
        )
        refused, _ = await recv_until(conn, "error")
        assert refused["error"]["code"] == "unsupported_content_type"
        assert refused["error"]["message"] == "Only model output audio messages can be truncated"
        assert refused["error"]["event_id"] is None
        assert sim.sessions[0].conversation.items[user_item].truncated_at_ms is None


async def test_delete_known_and_unknown_items() -> None:
    scripted = RealtimeScript(replies=(Reply(audio_ms=100),))
    async with RealtimeSimulator(lambda: scripted) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        done, _ = await recv_until(conn, "response.done")
        item_id = done["response"]["output"][0]["id"]
        await send(conn, {"type": "conversation.item.delete", "item_id": item_id})
        deleted = await recv(conn)
        assert deleted["type"] == "conversation.item.deleted"
        assert deleted["item_id"] == item_id
        await send(conn, {"type": "conversation.item.delete", "item_id": item_id})
        assert (await recv(conn))["type"] == "error"


async def test_beta_names_option() -> None:
    scripted = RealtimeScript(replies=(Reply(audio_ms=200),))
    async with (
        RealtimeSimulator(lambda: scripted, beta_names=True) as sim,
        sdk_connection(sim) as conn,
    ):
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        _, seen = await recv_until(conn, "response.done")
        types = {e["type"] for e in seen}
        assert {"response.audio.delta", "response.audio.done"} <= types
        assert {"response.audio_transcript.delta", "conversation.item.created"} <= types
        assert not any(t.startswith("response.output_audio") for t in types)
        assert "conversation.item.added" not in types
        assert sum(delta_bytes(seen, "response.audio.delta")) == 200 * 8


async def test_malformed_json_and_unknown_types_get_errors_and_the_socket_stays_up() -> None:
    async with RealtimeSimulator() as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await conn.send_raw("{not json")
        assert (await recv(conn))["type"] == "error"
        await send(conn, {"type": "no.such.event"})
        error = await recv(conn)
        assert error["type"] == "error"
        assert error["error"]["param"] == "type"
        await send(conn, {"type": "session.update", "session": {"instructions": "x"}})
        assert (await recv(conn))["type"] == "session.updated"
        assert sim.sessions[0].recording.received[-1].type == "session.update"


@pytest.mark.parametrize("close_code", [None, 1011])
async def test_disconnect_fault_after_first_response(close_code: int | None) -> None:
    scripted = RealtimeScript(
        replies=(Reply(audio_ms=100),),
        faults=(Disconnect(after_responses=1, close_code=close_code),),
    )
    async with RealtimeSimulator(lambda: scripted) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        await recv_until(conn, "response.done")
        with pytest.raises(ConnectionClosedError) as raised:
            await recv(conn)
        if close_code is None:
            assert raised.value.rcvd is None  # no close frame: the TCP connection just dropped
        else:
            assert raised.value.rcvd is not None
            assert raised.value.rcvd.code == 1011


async def test_disconnect_mid_response_and_error_event_faults() -> None:
    scripted = RealtimeScript(
        replies=(Reply(audio_ms=100), Reply(audio_ms=2000)),
        faults=(SendError(after_responses=1), Disconnect(after_responses=1, after_deltas=2)),
    )
    async with RealtimeSimulator(lambda: scripted) as sim, sdk_connection(sim) as conn:
        await start_session(conn)
        await send(conn, {"type": "response.create"})
        await recv_until(conn, "response.done")
        error = await recv(conn)
        assert error["error"]["code"] == "server_error"
        await send(conn, {"type": "response.create"})
        with pytest.raises(ConnectionClosedError):
            await recv_until(conn, "response.done")
        deltas = sim.sessions[0].recording.sent_of("response.output_audio.delta")
        second_id = sim.sessions[0].responses[1].id
        assert len([d for d in deltas if d["response_id"] == second_id]) == 2


async def test_a_connect_takes_the_handshake_delay() -> None:
    async with RealtimeSimulator(handshake_delay_ms=150) as sim:
        started = time.monotonic()
        async with sdk_connection(sim) as conn:
            connected = time.monotonic()
            await start_session(conn)

    # The connect's round trips over the internet, as one wait before the upgrade.
    assert connected - started >= 0.15
    assert len(sim.sessions) == 1
