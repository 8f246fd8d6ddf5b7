"""The shell's wiring: the real ASGI app, a scripted Realtime server, and the official SDK.

Twilio's side is played with Channels' WebsocketCommunicator; the Realtime
side is a scripted server on a real local socket, reached through the
official SDK. Decisions (when to barge in, how long to drain, what to
truncate) are the core's and are proven in `tests/callcore` with a stepped
clock; these tests prove that the shell carries them over real sockets.
Tests await the events that prove a state; none sleeps for it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async

from callcore.lifecycle import Phase
from calls.conf import callbridge_settings
from calls.frontdoor.tokens import mint_stream_token
from calls.live.bridge import CallBridge
from calls.live.process import CallProcess
from calls.live.realtime import direct_writer, raw_sender
from calls.models import BargeInEvent, CallSession, PlayoutLog
from tests.callbridge import configure
from tests.calls.fakes import (
    FailingChannelLayer,
    FakeRealtime,
    FakeSession,
    TwilioStream,
    WatchedFeed,
    caller_says_stop,
    make_call,
)

pytestmark = pytest.mark.django_db(transaction=True)

CALL_SID = "CA" + "7" * 32
FRAME = 160


@pytest.fixture
async def realtime(settings: Any) -> AsyncIterator[FakeRealtime]:
    async with FakeRealtime() as server:
        configure(
            settings,
            OPENAI_WEBSOCKET_BASE_URL=server.websocket_base_url,
            OPENAI_API_KEY="sk-test",
            AGENT_GREETING="",
        )
        yield server


@pytest.fixture
async def call() -> CallSession:
    return await make_call(CALL_SID)


class Call:
    """A started call: Twilio's stream, the model's session, and the bridge between."""

    def __init__(self, twilio: TwilioStream, model: FakeSession, bridge: CallBridge) -> None:
        self.twilio = twilio
        self.model = model
        self.bridge = bridge


@pytest.fixture(autouse=True)
def watched(call_process: CallProcess) -> WatchedFeed:
    """The process's feed, watched: it says when each call's stream has started."""
    call_process.feed = feed = WatchedFeed()
    return feed


async def started_bridge(process: CallProcess, call_sid: str) -> CallBridge:
    """The call's bridge, once its stream has started (it joined the roster first)."""
    assert isinstance(process.feed, WatchedFeed)
    await process.feed.started(call_sid)
    [bridge] = [c for c in process.roster.calls() if isinstance(c, CallBridge)]
    return bridge


def assert_fully_ended(process: CallProcess, bridge: CallBridge) -> None:
    """The call is out of the process's roster, and none of the bridge's tasks runs."""
    assert bridge not in process.roster.calls()
    names = {f"{role}-{bridge.call.call_sid}" for role in ("uplink", "model")}
    assert [t for t in asyncio.all_tasks() if t.get_name() in names and not t.done()] == []


@pytest.fixture
async def live(
    realtime: FakeRealtime, call: CallSession, call_process: CallProcess
) -> AsyncIterator[Call]:
    twilio = TwilioStream.open(CALL_SID)
    await twilio.start()
    model = await realtime.session()
    await model.expect("session.update")
    bridge = await started_bridge(call_process, CALL_SID)
    yield Call(twilio, model, bridge)
    await twilio.communicator.disconnect()
    await bridge.wait_ended()
    assert_fully_ended(call_process, bridge)


def tone(value: int, ms: int) -> bytes:
    return bytes([value]) * (ms * 8)


def media_audio(message: dict[str, Any]) -> bytes:
    """A Twilio message's audio (none unless it is media)."""
    if message["event"] != "media":
        return b""
    return base64.b64decode(message["media"]["payload"])


@database_sync_to_async
def rows(kind: str) -> list[PlayoutLog]:
    return list(PlayoutLog.objects.filter(call__call_sid=CALL_SID, kind=kind))


@database_sync_to_async
def barge_ins() -> list[BargeInEvent]:
    return list(BargeInEvent.objects.filter(call__call_sid=CALL_SID))


@database_sync_to_async
def call_row() -> CallSession:
    return CallSession.objects.get(call_sid=CALL_SID)


# --- connection and authentication ---------------------------------------------------


async def test_missing_signature_is_refused_before_any_model_session(
    realtime: FakeRealtime, call: CallSession
) -> None:
    twilio = TwilioStream.open(CALL_SID, signature="")
    connected, _ = await twilio.communicator.connect()
    assert connected
    assert await twilio.wait_closed() == 4403
    assert realtime.sessions == []


async def test_forged_signature_is_refused(realtime: FakeRealtime, call: CallSession) -> None:
    twilio = TwilioStream.open(CALL_SID, signature="Zm9yZ2VkIHNpZ25hdHVyZQ==")
    await twilio.communicator.connect()
    assert await twilio.wait_closed() == 4403
    assert realtime.sessions == []


@pytest.mark.parametrize(
    "token",
    [
        "",
        "123.deadbeef",
        mint_stream_token("CA" + "8" * 32, time.time()),  # another call's token
        mint_stream_token(CALL_SID, time.time() - 3600),  # expired
    ],
    # Stable ids: each test process collects these, at its own second.
    ids=["empty", "malformed", "another_call", "expired"],
)
async def test_bad_stream_token_is_refused(
    realtime: FakeRealtime, call: CallSession, token: str
) -> None:
    twilio = TwilioStream.open(CALL_SID)
    await twilio.start(token=token)
    assert await twilio.wait_closed() == 4401
    assert realtime.sessions == []
    assert (await call_row()).status == "ringing"


async def assert_no_session_left_open(realtime: FakeRealtime) -> None:
    """A model session opened while the stream was being claimed is closed, never used."""
    for session in realtime.sessions:
        async with asyncio.timeout(5):
            await session.closed.wait()
        assert session.of_type("response.create") == []
        assert session.audio_in == b""


async def test_stream_for_unknown_call_is_refused_and_records_nothing(
    realtime: FakeRealtime,
) -> None:
    twilio = TwilioStream.open(CALL_SID)
    await twilio.start()
    assert await twilio.wait_closed() == 4404
    await assert_no_session_left_open(realtime)
    assert not await database_sync_to_async(CallSession.objects.exists)()


async def test_start_marks_the_call_streaming_and_configures_the_session(live: Call) -> None:
    update = live.model.of_type("session.update")[0]["session"]

    assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["input"]["turn_detection"]["interrupt_response"] is False
    assert update["tools"][0]["name"] == "end_call"
    row = await call_row()
    assert (row.status, row.stream_sid) == ("streaming", live.twilio.stream_sid)
    assert live.model.of_type("response.create") == []  # no greeting configured


async def test_the_model_socket_offers_no_compression(live: Call) -> None:
    # The fake server would accept permessage-deflate: the bridge must not offer it.
    assert live.model.extensions is None


async def test_greeting_is_requested_when_configured(
    settings: Any, realtime: FakeRealtime, call: CallSession
) -> None:
    configure(settings, AGENT_GREETING="Hello, how can I help?")
    twilio = TwilioStream.open(CALL_SID)
    await twilio.start()
    model = await realtime.session()

    create = await model.expect("response.create")

    assert "Hello, how can I help?" in create["response"]["instructions"]
    await twilio.communicator.disconnect()


# --- audio paths ---------------------------------------------------------------------------


async def test_the_stream_tells_the_account_only_of_a_call_that_lacks_it(
    realtime: FakeRealtime, call_process: CallProcess
) -> None:
    unknown = await make_call("CA" + "8" * 32)  # its webhook said no AccountSid
    known = await database_sync_to_async(CallSession.objects.create)(
        call_sid="CA" + "9" * 32, account_sid="AC" + "7" * 32
    )
    for i, call in enumerate((unknown, known)):
        twilio = TwilioStream.open(call.call_sid)
        await twilio.start()  # its `start` names account AC000...
        await realtime.session(i)
        # Handled after `start` (the claim), and returns once the call has fully ended.
        await twilio.communicator.disconnect()

    get = database_sync_to_async(CallSession.objects.get)
    assert (await get(pk=unknown.pk)).account_sid == "AC" + "0" * 32
    assert (await get(pk=known.pk)).account_sid == "AC" + "7" * 32


async def test_caller_audio_reaches_the_model_byte_for_byte_in_order(live: Call) -> None:
    sent = bytes(range(256)) * 25  # 6400 bytes: 40 frames of distinct content
    for i in range(0, len(sent), FRAME):
        await live.twilio.media(sent[i : i + FRAME], timestamp_ms=i // 8)

    assert await live.model.expect_audio(len(sent)) == sent


async def test_audio_queued_while_the_session_opens_goes_before_audio_written_at_once(
    realtime: FakeRealtime,
    call: CallSession,
    call_process: CallProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # How each append went: through the uplink task's queue, or straight onto the socket.
    paths: list[str] = []

    def queued_sender(connection: Any) -> Any:
        send = raw_sender(connection)

        async def counted(text: str) -> None:
            paths.append("queued")
            await send(text)

        return counted

    def counted_writer(connection: Any) -> Any:
        write = direct_writer(connection)
        assert write is not None

        def counted(text: str) -> bool:
            written = write(text)
            paths.append("direct" if written else "refused")
            return written

        return counted

    monkeypatch.setattr("calls.live.bridge.raw_sender", queued_sender)
    monkeypatch.setattr("calls.live.bridge.direct_writer", counted_writer)
    realtime.hold_handshakes = asyncio.Event()
    sent = bytes(range(256)) * 25  # 40 frames of distinct content
    half = len(sent) // 2
    twilio = TwilioStream.open(CALL_SID)
    await twilio.start()
    for i in range(0, half, FRAME):
        await twilio.media(sent[i : i + FRAME], timestamp_ms=i // 8)
    # The session's handshake has reached the server (the frames above with it), and waits.
    await realtime.handshake_waiting.wait()
    realtime.hold_handshakes.set()
    model = await realtime.session()
    await model.expect("session.update")
    for i in range(half, len(sent), FRAME):
        await twilio.media(sent[i : i + FRAME], timestamp_ms=i // 8)

    assert await model.expect_audio(len(sent)) == sent
    # Both ways were taken: what waited for the session first, then straight onto its socket.
    assert "queued" in paths
    assert "direct" in paths
    assert paths.index("direct") > max(i for i, path in enumerate(paths) if path == "queued")
    await twilio.communicator.disconnect()


async def test_audio_after_a_write_the_socket_refused_waits_behind_it(live: Call) -> None:
    # The socket cannot take the 5th append at once (as under flow control); the
    # appends after it must not overtake it while it waits for the uplink task.
    writes = 0
    real_writer = live.bridge._write_now
    assert real_writer is not None

    def refuses_the_fifth(text: str) -> bool:
        nonlocal writes
        writes += 1
        return writes != 5 and real_writer(text)

    live.bridge._write_now = refuses_the_fifth  # the session's, until the uplink task runs
    sent = bytes(range(256)) * 25
    # All handled before the uplink task runs: those after the refusal queue behind it.
    for i in range(0, len(sent), FRAME):
        await live.twilio.media(sent[i : i + FRAME], timestamp_ms=i // 8)

    assert await live.model.expect_audio(len(sent)) == sent


async def test_model_audio_is_reframed_paced_and_marked(live: Call) -> None:
    audio = bytes(range(1, 250)) * 20  # 4980 bytes = 622.5 ms, odd sizes below
    await live.model.response_created("resp_1")
    for start, end in [(0, 100), (100, 433), (433, 1433), (1433, len(audio))]:
        await live.model.audio("resp_1", "item_1", audio[start:end])
    await live.model.audio_done("resp_1", "item_1")

    await live.twilio.receive_audio(len(audio))
    await live.twilio.receive_until("mark")  # the mark at the item's end

    assert bytes(live.twilio.audio_out) == audio
    media = [m for _, m in live.twilio.events if m["event"] == "media"]
    sizes = [len(base64.b64decode(m["media"]["payload"])) for m in media]
    # Whole 20 ms frames, up to TWILIO_MEDIA_MESSAGE_MS a message (frames sent together
    # go together); only the item's last frame may be short.
    most = callbridge_settings().TWILIO_MEDIA_MESSAGE_MS * 8
    assert all(size % 160 == 0 and size <= most for size in sizes[:-1]), sizes
    assert sizes[-1] % 160 == len(audio) % 160
    assert live.twilio.events[-1][1]["event"] == "mark"
    # Between marks, audio and less than two PLAYOUT_MARK_INTERVAL_MS of it (a mark
    # due near the end of a send waits for that end); the last at the item's end.
    between, gaps = 0, []
    for _, message in live.twilio.events:
        if message["event"] == "media":
            between += len(base64.b64decode(message["media"]["payload"]))
        elif message["event"] == "mark":
            gaps.append(between)
            between = 0
    assert all(0 < gap < 2 * callbridge_settings().PLAYOUT_MARK_INTERVAL_MS * 8 for gap in gaps), (
        gaps
    )
    assert sum(gaps) == len(audio)
    # Pacing: Twilio is never handed more than the lead (PLAYOUT_LEAD_MS) beyond real
    # time, counting each message's audio when it is sent.
    lead_ms = callbridge_settings().PLAYOUT_LEAD_MS
    first = live.twilio.events[0][0]
    sent = 0
    for at, message in live.twilio.events:
        if message["event"] == "media":
            sent += len(base64.b64decode(message["media"]["payload"]))
            played_ms = (at - first) * 1000
            assert sent / 8 - played_ms <= lead_ms + 20 + 40  # one frame, scheduling slack


async def test_beta_event_names_are_accepted(live: Call) -> None:
    await live.model.response_created("resp_1")
    await live.model.audio("resp_1", "item_1", tone(0x55, 100), beta=True)
    await live.model.send(
        {"type": "response.audio.done", "response_id": "resp_1", "item_id": "item_1"}
    )

    await live.twilio.receive_audio(800)

    assert bytes(live.twilio.audio_out) == tone(0x55, 100)


# --- barge-in ----------------------------------------------------------------------------------


async def test_barge_in_mid_generation_clears_cancels_and_truncates(live: Call) -> None:
    await live.model.response_created("resp_1")
    await live.model.audio("resp_1", "item_1", tone(0x11, 1000))
    await live.twilio.receive_audio(4000)  # 500 ms handed over: about 200 ms played

    await caller_says_stop(live.twilio, live.model)

    await live.model.expect("response.cancel")
    truncate = await live.model.expect("conversation.item.truncate")
    assert truncate["item_id"] == "item_1"
    # Late deltas of the cancelled response never reach Twilio: after the barge-in's
    # clear (the last before the next response's audio; a loaded machine may have
    # paused the answer for the sound, and resumed it, before it), the next audio the
    # caller gets is the next response's.
    await live.model.audio("resp_1", "item_1", tone(0x11, 200))
    await live.model.response_done("resp_1", status="cancelled")
    await live.model.response_created("resp_2")
    await live.model.audio("resp_2", "item_2", tone(0x22, 100))
    while 0x22 not in live.twilio.audio_out:
        await live.twilio.receive_until("media")
    messages = [message for _, message in live.twilio.events]
    last_clear = max(n for n, message in enumerate(messages) if message["event"] == "clear")
    before = b"".join(media_audio(message) for message in messages[:last_clear])
    after = b"".join(media_audio(message) for message in messages[last_clear:])
    assert set(after) == {0x22}
    assert 0 < truncate["audio_end_ms"] <= len(before) // 8

    await live.twilio.communicator.disconnect()
    [event] = await barge_ins()
    assert event.response_cancelled is True
    assert event.playout_remaining_ms > 0
    assert event.audio_end_ms == truncate["audio_end_ms"]
    assert event.reaction_ms < 50
    [log] = await rows("barge_in")
    assert log.playout_status.startswith("playout_active_")


async def test_a_timer_that_sends_audio_runs_where_the_audio_leaves(
    live: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the caller silent, pacing timers send the answer's frames. Each timer due to
    send runs in the drain, which sends at once: the frames are dated when they leave,
    not a loop turn (or, on a busy loop, hundreds of ms) before the drain gets to them."""
    bridge = live.bridge
    core = bridge.core
    timers: list[tuple[bool, bool]] = []  # (frames or a mark due, run in the drain)
    real_timer = core.timer

    def timer(now: float) -> None:
        timers.append((core.sends_due(now), bridge._draining))
        real_timer(now)

    monkeypatch.setattr(core, "timer", timer)
    await live.model.response_created("resp_1")
    await live.model.audio("resp_1", "item_1", tone(0x11, 1500))
    await live.model.audio_done("resp_1", "item_1")
    await live.twilio.receive_audio(1500 * 8)

    sending = [in_drain for due, in_drain in timers if due]
    assert len(sending) >= 3, timers
    assert all(sending), timers


async def test_the_reaction_lasts_until_the_clear_has_been_sent(
    realtime: FakeRealtime, call: CallSession
) -> None:
    """A slow socket: the caller hears the AI until the clear is out, and so says the record."""
    twilio = TwilioStream.open(CALL_SID, slow_clear_s=0.05)
    await twilio.start()
    model = await realtime.session()
    await model.expect("session.update")
    await model.response_created("resp_1")
    await model.audio("resp_1", "item_1", tone(0x11, 2000))
    await twilio.receive_audio(4000)

    await caller_says_stop(twilio, model)
    await twilio.receive_until("clear")
    await model.expect("conversation.item.truncate")
    await twilio.communicator.disconnect()

    [event] = await barge_ins()
    assert event.reaction_ms >= 50
    [log] = await rows("barge_in")
    assert log.details["reaction_ms"] == event.reaction_ms


async def test_barge_in_in_the_playout_tail(live: Call, caplog: pytest.LogCaptureFixture) -> None:
    """The original bug: the model is done, but the caller is still hearing it."""
    caplog.set_level(logging.INFO)
    await live.model.response_created("resp_1")
    for _ in range(4):
        await live.model.audio("resp_1", "item_1", tone(0x33, 500))
    await live.model.audio_done("resp_1", "item_1")
    await live.model.response_done("resp_1")
    await live.twilio.receive_audio(8 * 800)  # about 540 ms into playback (the lead ahead)

    await caller_says_stop(live.twilio, live.model)
    await live.twilio.receive_until("clear")

    truncate = await live.model.expect("conversation.item.truncate")
    assert 0 < truncate["audio_end_ms"] < 1000
    await live.twilio.communicator.disconnect()
    assert live.model.of_type("response.cancel") == []  # nothing was generating
    [event] = await barge_ins()
    assert event.playout_remaining_ms > 700
    assert event.response_cancelled is False
    assert "[EARLY_BARGE_IN] Triggered on speech START! playout_remaining_ms=" in caplog.text
    assert "AI silent" not in caplog.text


# --- hangup with drain ------------------------------------------------------------------------


async def say_goodbye(live: Call, ms: int) -> None:
    await live.model.response_created("resp_bye")
    await live.model.audio("resp_bye", "item_bye", tone(0x66, ms))
    await live.model.audio_done("resp_bye", "item_bye")
    await live.model.send(
        {
            "type": "response.function_call_arguments.done",
            "response_id": "resp_bye",
            "item_id": "item_fc",
            "call_id": "call_1",
            "name": "end_call",
            "arguments": "{}",
        }
    )
    output = [{"type": "function_call", "name": "end_call", "call_id": "call_1", "arguments": "{}"}]
    await live.model.response_done("resp_bye", output=output)


async def test_end_call_drains_the_goodbye_then_closes(live: Call) -> None:
    await say_goodbye(live, 400)
    await live.twilio.receive_audio(400 * 8)
    await live.twilio.receive_until("mark")

    # Every frame is with Twilio but not yet played: the call stays up.
    assert live.bridge.core.life.phase is Phase.DRAINING
    assert not live.bridge.ended
    for name in live.twilio.marks:
        await live.twilio.echo_mark(name)

    assert await live.twilio.wait_closed() == 1000
    await live.bridge.wait_ended()
    row = await call_row()
    assert row.end_reason == "agent_hangup"
    assert row.ended_at is not None
    [done] = await rows("drain_completed")
    assert done.details["final_mark_echoed"] is True
    assert done.details["cut_off_ms"] == 0
    assert len(await rows("drain_started")) == 1


async def test_goodbye_interrupted_by_the_caller_keeps_the_call(live: Call) -> None:
    await say_goodbye(live, 1000)
    await live.twilio.receive_audio(2400)

    await caller_says_stop(live.twilio, live.model)
    await live.twilio.receive_until("clear")

    output = await live.model.expect("conversation.item.create")
    assert output["item"]["call_id"] == "call_1"
    assert live.bridge.core.life.phase is Phase.TALKING
    assert not live.bridge.ended
    await live.twilio.communicator.disconnect()
    await live.bridge.wait_ended()
    assert len(await rows("hangup_cancelled")) == 1
    assert await rows("drain_completed") == []
    assert (await call_row()).end_reason == "caller_disconnected"


# --- ends and faults ---------------------------------------------------------------------------


async def test_stop_ends_the_call_and_closes_the_model_session(
    live: Call, call_process: CallProcess
) -> None:
    await live.twilio.send({"event": "stop", "stop": {"callSid": CALL_SID}})

    assert await live.twilio.wait_closed() == 1000
    await live.bridge.wait_ended()
    row = await call_row()
    assert (row.status, row.end_reason) == ("completed", "caller_hangup")
    assert row.ended_at is not None
    assert_fully_ended(call_process, live.bridge)


async def test_socket_closed_without_stop_ends_the_call(live: Call) -> None:
    await live.model.response_created("resp_1")
    await live.model.audio("resp_1", "item_1", tone(0x12, 40))
    await live.twilio.receive_audio(320)  # proof the response reached the call
    await live.twilio.communicator.disconnect()
    await live.bridge.wait_ended()

    row = await call_row()
    assert row.end_reason == "caller_disconnected"
    assert [r.kind for r in await rows("response_started")] == ["response_started"]
    assert len(await rows("stream_ended")) == 1


async def test_a_send_to_a_caller_who_has_gone_is_the_caller_leaving(
    realtime: FakeRealtime,
    call: CallSession,
    call_process: CallProcess,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under Uvicorn a send on a socket whose client left raises ClientDisconnected."""
    gone = asyncio.Event()
    twilio = TwilioStream.open(CALL_SID, gone=gone)
    await twilio.start()
    model = await realtime.session()
    await model.expect("session.update")
    bridge = await started_bridge(call_process, CALL_SID)
    gone.set()

    await model.response_created("resp_1")
    await model.audio("resp_1", "item_1", tone(0x44, 100))  # the pacer's send fails
    await bridge.wait_ended()

    assert (await call_row()).end_reason == "caller_disconnected"
    assert len(await rows("stream_ended")) == 1
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    await twilio.communicator.disconnect()


async def test_realtime_dropping_opens_a_new_session_that_carries_on(
    live: Call, realtime: FakeRealtime
) -> None:
    await live.model.send(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_user",
            "content_index": 0,
            "transcript": "Are you open on Sundays?",
        }
    )
    await live.model.speech_started()
    live.model.ws.transport.abort()

    replacement = await realtime.session(1)
    await replacement.expect("session.update")
    seed = await replacement.expect("conversation.item.create")
    assert seed["item"]["role"] == "user"
    assert seed["item"]["content"][0]["text"] == "Are you open on Sundays?"
    # The new session answers and the caller hears it: the call went on.
    await replacement.response_created("resp_2")
    await replacement.audio("resp_2", "item_2", tone(0x12, 40))
    await live.twilio.receive_audio(320)
    assert not live.bridge.ended
    await live.twilio.communicator.disconnect()
    await live.bridge.wait_ended()
    assert len(await rows("model_recovered")) == 1
    [fault] = await rows("model_fault")
    assert fault.details["what"] == "connection_closed"


async def test_realtime_dropping_for_good_ends_the_call_model_unresponsive(
    live: Call, realtime: FakeRealtime
) -> None:
    realtime.accept_sessions = 1  # no replacement can be opened
    live.model.ws.transport.abort()

    assert await live.twilio.wait_closed() == 1000
    await live.bridge.wait_ended()
    row = await call_row()
    assert row.end_reason == "model_unresponsive"
    assert realtime.refused == 2  # MODEL_MAX_RECOVERIES
    faults = [r.details["what"] for r in await rows("model_fault")]
    assert faults == ["connection_closed", "replacement_failed", "replacement_failed"]


async def test_error_event_is_recorded_and_the_call_goes_on(live: Call) -> None:
    await live.model.send(
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "code": "bad_thing", "message": "x"},
        }
    )
    await live.model.response_created("resp_1")
    await live.model.audio("resp_1", "item_1", tone(0x12, 40))

    await live.twilio.receive_audio(320)
    await live.twilio.communicator.disconnect()

    [error] = await rows("model_error")
    assert error.details["code"] == "bad_thing"


async def test_malformed_twilio_messages_are_skipped(live: Call) -> None:
    communicator = live.twilio.communicator
    await communicator.send_to(text_data="{not json")
    await communicator.send_to(bytes_data=b"\x00\x01")
    await communicator.send_to(text_data='{"event":"surprise"}')
    await communicator.send_to(text_data='{"event":"media","media":{"payload":"%%%"}}')
    await live.twilio.send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}})
    await live.twilio.media(tone(0x21, 40))  # two frames: one append

    assert await live.model.expect_audio(320) == tone(0x21, 40)
    await communicator.disconnect()
    reasons = [r.details["reason"] for r in await rows("protocol_error")]
    assert reasons == [
        "not JSON",
        "binary frame",
        "unknown event 'surprise'",
        "media.payload is not base64",
    ]
    [dtmf] = await rows("dtmf")
    assert dtmf.details == {"digit": "5"}


async def test_media_before_start_is_skipped(realtime: FakeRealtime, call: CallSession) -> None:
    twilio = TwilioStream.open(CALL_SID)
    await twilio.communicator.connect()
    await twilio.media(tone(0x21, 20))
    await twilio.start()
    model = await realtime.session()
    await twilio.media(tone(0x22, 20))
    await twilio.media(tone(0x22, 20))

    assert await model.expect_audio(320) == tone(0x22, 40)
    await twilio.communicator.disconnect()


async def test_realtime_unreachable_ends_the_call(settings: Any, call: CallSession) -> None:
    configure(
        settings,
        OPENAI_WEBSOCKET_BASE_URL=f"ws://127.0.0.1:{unused_port()}/v1",
        OPENAI_API_KEY="sk-test",
    )
    twilio = TwilioStream.open(CALL_SID)
    await twilio.start()

    assert await twilio.wait_closed() == 1000
    await twilio.communicator.disconnect()
    row = await call_row()
    assert row.end_reason == "model_connect_failed"
    [error] = await rows("model_error")
    assert error.details["code"] == "connect_failed"


async def test_agent_hangup_completes_the_call_through_the_rest_api(
    settings: Any, live: Call
) -> None:
    requests: list[bytes] = []
    received = asyncio.Event()

    async def twilio_api(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        requests.append(head + await reader.readexactly(length))
        body = json.dumps({"sid": CALL_SID, "status": "completed"}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()
        received.set()

    server = await asyncio.start_server(twilio_api, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    live.bridge.config = dataclasses.replace(  # the bridge's own configuration, public
        live.bridge.config,
        twilio_account_sid="AC" + "3" * 32,
        twilio_api_base_url=f"http://127.0.0.1:{port}",
    )
    async with server:
        await say_goodbye(live, 40)
        await live.twilio.receive_until("mark")
        for name in live.twilio.marks:
            await live.twilio.echo_mark(name)
        assert await live.twilio.wait_closed() == 1000
        async with asyncio.timeout(5):
            await received.wait()

    [request] = requests
    assert request.startswith(
        f"POST /2010-04-01/Accounts/AC{'3' * 32}/Calls/{CALL_SID}.json".encode()
    )
    assert b"Status=completed" in request


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_failing_channel_layer_never_touches_the_call(
    settings: Any, realtime: FakeRealtime, call: CallSession, call_process: CallProcess
) -> None:
    FailingChannelLayer.fail = asyncio.Event()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.calls.fakes.FailingChannelLayer"}}
    twilio = TwilioStream.open(CALL_SID)
    await twilio.start()
    model = await realtime.session()
    await model.expect("session.update")
    bridge = await started_bridge(call_process, CALL_SID)
    FailingChannelLayer.fail.set()

    await twilio.media(tone(0x33, 40))
    assert await model.expect_audio(2 * FRAME) == tone(0x33, 40)
    await twilio.send({"event": "stop", "stop": {"callSid": CALL_SID}})
    assert await twilio.wait_closed() == 1000
    await bridge.wait_ended()
    assert (await call_row()).end_reason == "caller_hangup"


async def test_a_second_stream_for_the_same_call_is_refused(
    live: Call, realtime: FakeRealtime
) -> None:
    """A replayed TwiML token must not open a second model session for the call."""
    second = TwilioStream.open(CALL_SID)
    await second.start()

    assert await second.wait_closed() == 4409
    # Its model session may have opened while the claim ran: if so, it is closed unused.
    for refused in realtime.sessions[1:]:
        async with asyncio.timeout(5):
            await refused.closed.wait()
        assert refused.of_type("response.create") == []
        assert refused.audio_in == b""
    assert not live.model.closed.is_set()
    assert not live.bridge.ended
    await live.twilio.media(tone(0x21, 40))
    assert await live.model.expect_audio(320) == tone(0x21, 40)


# --- per-stream bounds ----------------------------------------------------------------


async def test_a_stream_that_never_starts_is_closed_4408(
    realtime: FakeRealtime, call: CallSession, settings: Any
) -> None:
    configure(settings, STREAM_START_TIMEOUT_S=0.2)
    twilio = TwilioStream.open(CALL_SID)
    connected, _ = await twilio.communicator.connect()
    assert connected
    await twilio.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    assert await twilio.wait_closed() == 4408
    assert realtime.sessions == []


async def test_a_media_format_other_than_8_khz_mono_mulaw_is_refused_4415(
    realtime: FakeRealtime, call: CallSession, caplog: pytest.LogCaptureFixture
) -> None:
    twilio = TwilioStream.open(CALL_SID)
    await twilio.start(media_format={"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1})

    assert await twilio.wait_closed() == 4415
    assert realtime.sessions == []
    assert "mediaFormat audio/x-l16 16000 Hz" in caplog.text


async def test_malformed_messages_past_the_limit_close_4400(live: Call) -> None:
    for _ in range(50):
        await live.twilio.communicator.send_to(text_data="{not json")

    assert await live.twilio.wait_closed() == 4400
    await live.bridge.wait_ended()
    assert (await call_row()).end_reason == "protocol_errors"
    # Five are recorded one by one; the count is in the end record.
    assert len(await rows("protocol_error")) == 5
    [ended] = await rows("stream_ended")
    assert ended.details["protocol_errors"] == 50


async def test_an_oversized_frame_is_refused_and_not_forwarded(live: Call) -> None:
    await live.twilio.media(tone(0x33, 2000))  # 2 s in one frame
    await live.twilio.media(tone(0x21, 40))

    assert await live.model.expect_audio(320) == tone(0x21, 40)
    await live.twilio.communicator.disconnect()
    await live.bridge.wait_ended()
    [error] = await rows("protocol_error")
    assert error.details["reason"].startswith("media.payload too large")


async def test_a_dtmf_flood_keeps_100_rows_and_counts_the_rest(live: Call) -> None:
    for _ in range(150):
        await live.twilio.send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}})
    await live.twilio.send({"event": "media", "media": {"payload": ""}})  # empty: dropped
    await live.twilio.media(tone(0x21, 40))
    await live.model.expect_audio(320)

    await live.twilio.communicator.disconnect()
    await live.bridge.wait_ended()
    assert len(await rows("dtmf")) == 100
    [ended] = await rows("stream_ended")
    assert (ended.details["dtmf_digits"], ended.details["empty_frames"]) == (150, 1)


async def test_a_model_that_stops_reading_is_noticed_by_its_pings_and_replaced(
    realtime: FakeRealtime, call: CallSession, call_process: CallProcess, settings: Any
) -> None:
    configure(settings, MODEL_PING_INTERVAL_S=0.2, MODEL_PING_TIMEOUT_S=0.2)
    twilio = TwilioStream.open(CALL_SID)
    await twilio.start()
    model = await realtime.session()
    await model.expect("session.update")
    model.ws.transport.pause_reading()  # a hung server: nothing read, no pong

    replacement = await realtime.session(1)
    await replacement.expect("session.update")
    await twilio.communicator.disconnect()
    [fault] = await rows("model_fault")
    assert fault.details["what"] == "connection_closed"
    model.ws.transport.abort()  # the hung peer, gone for good


# --- control through the channel layer -----------------------------------------------------


async def test_an_operator_ends_a_live_call_through_the_channel_layer(live: Call) -> None:
    from calls.live.control import request_end

    await live.model.response_created("resp_1")
    await live.model.audio("resp_1", "item_1", tone(0x12, 40))
    await live.twilio.receive_audio(320)  # the call is up, its control subscription too

    await request_end(CALL_SID, "test")

    assert await live.twilio.wait_closed() == 1000
    await live.bridge.wait_ended()
    row = await call_row()
    assert row.end_reason == "operator_hangup"
