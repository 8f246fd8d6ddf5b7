"""The process's record writer and a call's recorder: batched writes that never lose a row.

Each test drives its own `RecordWriter` with a long interval and writes by
calling `write_pending()` (in a thread, as the writer's own thread would), so
nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError, connection
from django.utils import timezone

from calls.live.beat import Beat
from calls.live.process import CallProcess, ProcessConfig
from calls.live.recorder import CallRecorder
from calls.live.writer import RecordWriter, write_batch
from calls.models import BargeInEvent, CallSession, PlayoutLog
from tests.calls.fakes import sample_barge_in

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def kinds(call_pk: int) -> list[str]:
    return list(
        PlayoutLog.objects.filter(call_id=call_pk).order_by("id").values_list("kind", flat=True)
    )


@database_sync_to_async
def new_call(sid: str = "CA" + "4" * 32) -> CallSession:
    return CallSession.objects.create(call_sid=sid)


_writers: list[RecordWriter] = []


@pytest.fixture(autouse=True)
async def _writers_closed() -> AsyncIterator[None]:
    """Each writer's thread keeps a database connection: stop them all after the test."""
    yield
    while _writers:
        await asyncio.to_thread(_writers.pop().close)


def writer_for_test(interval_s: float, write: Callable[[Any], None] | None = None) -> RecordWriter:
    writer = RecordWriter(interval_s=interval_s, write=write)
    _writers.append(writer)
    return writer


def idle_writer(write: Callable[[Any], None] | None = None) -> RecordWriter:
    """A writer whose thread never wakes on its own within a test."""
    return writer_for_test(3600, write)


async def write_now(writer: RecordWriter) -> bool:
    return await database_sync_to_async(writer.write_pending)()


async def test_rows_get_offsets_and_wall_times_from_one_anchor() -> None:
    call = await new_call()
    writer = idle_writer()
    recorder = CallRecorder(call.pk, timezone.now(), 100.0, writer=writer)

    recorder.barge_in(sample_barge_in(101.25).reacted(101.2502))
    recorder.update_call({"end_reason": "caller_hangup"})
    assert await write_now(writer)

    # One barge-in, two rows: the recorder decides them (the timeline's, and its own).
    log = await database_sync_to_async(PlayoutLog.objects.get)(call_id=call.pk)
    event = await database_sync_to_async(BargeInEvent.objects.get)(call_id=call.pk)
    assert (log.kind, log.playout_status) == ("barge_in", "playout_active_4300ms")
    assert (log.offset_ms, event.offset_ms) == (1250, 1250)
    assert log.occurred_at == event.occurred_at
    assert (log.details["item_id"], event.item_id) == ("i1", "i1")
    assert (log.details["reaction_ms"], event.reaction_ms) == (0.2, 0.2)
    assert log.details["deleted_item_ids"] == ["i0"]
    assert event.details == {"speaking_reason": "playout", "link_rtt_ms": 100}
    assert (await database_sync_to_async(CallSession.objects.get)(pk=call.pk)).end_reason == (
        "caller_hangup"
    )


async def test_every_calls_rows_go_in_one_transaction() -> None:
    first, second = await new_call("CA" + "1" * 32), await new_call("CA" + "2" * 32)
    batches: list[int] = []

    def counting_write(batch: Any) -> None:
        batches.append(len(batch))
        write_batch(batch)

    writer = idle_writer(counting_write)
    for call in (first, second):
        recorder = CallRecorder(call.pk, timezone.now(), time.monotonic(), writer=writer)
        recorder.log("stream_started", time.monotonic())
        recorder.update_call({"responses": 3})
    assert await write_now(writer)

    assert batches == [4]
    assert await kinds(first.pk) == await kinds(second.pk) == ["stream_started"]


async def test_a_waiter_cancelled_mid_write_loses_nothing() -> None:
    """The write in progress finishes, whoever stops waiting for it."""
    call = await new_call()
    started, release = threading.Event(), threading.Event()

    def first_write_held(batch: Any) -> None:
        if not started.is_set():  # the write in progress when the waiter goes
            started.set()
            release.wait(10)
        write_batch(batch)

    writer = idle_writer(first_write_held)
    recorder = CallRecorder(call.pk, timezone.now(), time.monotonic(), writer=writer)
    recorder.log("response_started", time.monotonic())
    recorder.log("barge_in", time.monotonic())
    writing = asyncio.ensure_future(write_now(writer))
    waiting = asyncio.ensure_future(recorder.close())
    await asyncio.to_thread(started.wait, 10)
    waiting.cancel()
    recorder.log("stream_ended", time.monotonic())
    release.set()
    assert await writing

    await asyncio.gather(write_now(writer), recorder.close())
    assert await kinds(call.pk) == ["response_started", "barge_in", "stream_ended"]
    assert waiting.cancelled()


async def test_close_returns_once_the_calls_rows_are_written_by_the_thread() -> None:
    call = await new_call()
    writer = writer_for_test(0.01)
    recorder = CallRecorder(call.pk, timezone.now(), time.monotonic(), writer=writer)
    for i in range(50):
        recorder.log("dtmf", time.monotonic(), digit=str(i % 10))
        if i % 10 == 0:
            await asyncio.sleep(0)  # let the thread write some while more come in
    await asyncio.wait_for(recorder.close(), 10)

    assert len(await kinds(call.pk)) == 50
    assert writer.rows_written == 50
    assert writer.pending_rows == 0


class HeldCall:
    """A call a process holds, reduced to its recorder (what the process's exit asks of it)."""

    def __init__(self, pk: int, recorder: CallRecorder) -> None:
        self.pk = pk
        self.recorder = recorder

    def hand_over(self, grace_s: float) -> None:
        raise AssertionError("not a deploy")

    async def wait_ended(self) -> None:
        raise AssertionError("not a deploy")

    def end_at_exit(self) -> None:
        self.recorder.end_at_exit()


def process_holding(call_pk: int, writer: RecordWriter) -> tuple[CallProcess, CallRecorder]:
    process = CallProcess(ProcessConfig(), writer=writer)
    recorder = CallRecorder(call_pk, timezone.now(), time.monotonic(), writer=writer)
    process.roster.add(HeldCall(call_pk, recorder))
    return process, recorder


async def test_a_process_stopping_while_rows_gather_writes_them_at_once() -> None:
    call = await new_call()
    # Wakes only when told; a write woken soon after another would wait an hour.
    writer = RecordWriter(interval_s=3600, gather_s=3600)
    _writers.append(writer)
    process, recorder = process_holding(call.pk, writer)
    recorder.log("response_started", time.monotonic())
    await asyncio.wait_for(recorder.close(), 10)  # the thread's first write: at once
    recorder.barge_in(sample_barge_in(time.monotonic()))  # wakes it

    await asyncio.to_thread(process.stop, 10)

    # The call itself was still going: the process's exit ends it, in the same write.
    assert await kinds(call.pk) == ["response_started", "barge_in", "stream_ended"]
    assert writer.pending_rows == 0


async def test_the_ends_a_stopping_process_hands_over_mid_write_are_written_too() -> None:
    call = await new_call()
    in_write = threading.Event()

    def write_until_stopping(batch: Any) -> None:
        if not in_write.is_set():  # the write in progress when the process stops
            in_write.set()
            writer._stop.wait(10)  # set by close(), once the process has ended the call
        write_batch(batch)

    writer = RecordWriter(interval_s=3600, write=write_until_stopping)
    _writers.append(writer)
    process, recorder = process_holding(call.pk, writer)
    recorder.log("response_started", time.monotonic())
    recorder.barge_in(sample_barge_in(time.monotonic()))  # wakes it
    await asyncio.to_thread(in_write.wait, 10)

    await asyncio.to_thread(process.stop, 10)

    assert await kinds(call.pk) == ["response_started", "barge_in", "stream_ended"]
    assert writer.pending_rows == 0


async def test_a_failed_write_keeps_its_rows_in_order_for_the_next_attempt() -> None:
    call = await new_call()
    outage = [True]

    def flaky_write(batch: Any) -> None:
        if outage[0]:
            raise OperationalError("the database is restarting")
        write_batch(batch)

    writer = idle_writer(flaky_write)
    recorder = CallRecorder(call.pk, timezone.now(), time.monotonic(), writer=writer)
    recorder.log("stream_started", time.monotonic())
    recorder.update_call({"responses": 1})

    assert await write_now(writer) is False
    recorder.log("stream_ended", time.monotonic())
    recorder.update_call({"responses": 2})
    assert writer.pending_rows == 3  # two logs, one call update (merged)

    outage[0] = False
    assert await write_now(writer) is True
    assert await kinds(call.pk) == ["stream_started", "stream_ended"]
    assert (await database_sync_to_async(CallSession.objects.get)(pk=call.pk)).responses == 2


async def test_rows_the_database_refuses_hold_back_no_other_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A deleted call's late rows fail for good; they are dropped, loudly, alone."""
    call = await new_call()
    writer = idle_writer()
    gone = CallRecorder(999_999, timezone.now(), time.monotonic(), writer=writer)
    alive = CallRecorder(call.pk, timezone.now(), time.monotonic(), writer=writer)
    gone.log("stream_ended", time.monotonic())
    alive.log("stream_started", time.monotonic())

    assert await write_now(writer) is True

    assert await kinds(call.pk) == ["stream_started"]
    assert writer.rows_dropped == 1
    assert writer.pending_rows == 0
    assert "dropping 1 records of call 999999" in caplog.text


async def test_the_writer_thread_uses_a_connection_of_its_own() -> None:
    call = await new_call()
    seen: list[int] = []

    def noting_write(batch: Any) -> None:
        seen.append(threading.get_ident())
        assert connection.in_atomic_block is False
        write_batch(batch)

    writer = writer_for_test(0.01, noting_write)
    recorder = CallRecorder(call.pk, timezone.now(), time.monotonic(), writer=writer)
    recorder.log("stream_started", time.monotonic())
    await asyncio.wait_for(recorder.close(), 10)

    assert seen
    assert all(ident != threading.get_ident() for ident in seen)


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_outage_is_one_error_a_reminder_a_minute_and_one_line_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = await new_call()
    outage = [True]

    def flaky_write(batch: Any) -> None:
        if outage[0]:
            raise OperationalError("could not connect to server: Connection refused\nIs it up?")
        write_batch(batch)

    clock = SteppedClock()
    writer = RecordWriter(interval_s=3600, write=flaky_write, clock=clock)
    _writers.append(writer)
    recorder = CallRecorder(call.pk, timezone.now(), time.monotonic(), writer=writer)
    recorder.log("stream_started", time.monotonic())
    caplog.clear()

    for _ in range(12):  # a minute and a half of attempts, 7.5 s apart
        assert await write_now(writer) is False
        clock.now += 7.5
    recorder.log("stream_ended", time.monotonic())
    recorder.update_call({"status": "completed", "ended_at": timezone.now()})
    outage[0] = False
    assert await write_now(writer) is True

    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "calls.live.writer"]
    assert [level for level, _ in lines] == ["ERROR", "WARNING", "WARNING"]
    assert lines[0][1].startswith("database unavailable (OperationalError: could not connect")
    assert "Is it up?" not in lines[0][1]  # one line, no driver detail, no traceback
    assert lines[1][1].startswith("database still unavailable after 60 s")
    assert lines[2][1] == "database back after 90.0 s: wrote 3 call records kept meanwhile"
    assert all(r.exc_info is None for r in caplog.records)
    assert await kinds(call.pk) == ["stream_started", "stream_ended"]
    ended = await database_sync_to_async(CallSession.objects.get)(pk=call.pk)
    assert ended.status == "completed"
    assert ended.ended_at is not None


async def test_a_full_buffer_drops_new_log_rows_with_one_error_and_keeps_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = await new_call()
    outage = [True]

    def flaky_write(batch: Any) -> None:
        if outage[0]:
            raise OperationalError("database is locked")
        write_batch(batch)

    writer = RecordWriter(interval_s=3600, write=flaky_write, max_pending_rows=5)
    _writers.append(writer)
    recorder = CallRecorder(call.pk, timezone.now(), time.monotonic(), writer=writer)
    for _ in range(8):
        recorder.log("dtmf", time.monotonic(), digit="1")
    recorder.barge_in(sample_barge_in(time.monotonic()))  # its log row is dropped too
    recorder.update_call({"status": "completed"})
    assert await write_now(writer) is False

    outage[0] = False
    assert await write_now(writer) is True

    full = [r for r in caplog.records if "buffer full" in r.getMessage()]
    assert len(full) == 1
    assert full[0].levelname == "ERROR"
    assert writer.rows_dropped == 4
    assert len(await kinds(call.pk)) == 5
    assert await database_sync_to_async(BargeInEvent.objects.filter(call_id=call.pk).count)() == 1
    assert "4 dropped for want of room" in caplog.text


async def test_the_conversation_is_read_back_from_its_records_in_order() -> None:
    from calls.live.handover import conversation_so_far

    call = await new_call()
    writer = idle_writer()
    recorder = CallRecorder(call.pk, timezone.now(), 0.0, writer=writer)
    turn = "conversation_turn"
    recorder.log(turn, 1.0, seq=1, role="user", item_id="u1", text="When do you open?")
    recorder.log(turn, 2.0, seq=2, role="assistant", item_id="a1", text="At nine, and on")
    recorder.log(turn, 2.5, seq=2, role="assistant", item_id="a1", text="At nine.")  # cut
    recorder.log(turn, 3.0, seq=3, role="user", item_id="u2", text="")
    assert await write_now(writer)

    turns = await database_sync_to_async(conversation_so_far)(call.pk)
    assert [(t.role, t.text) for t in turns] == [
        ("user", "When do you open?"),
        ("assistant", "At nine."),
    ]


def test_after_an_outage_the_beat_reaps_nothing_until_every_process_could_mark_its_calls() -> None:
    database_up = [True]
    reaped_at: list[float] = []

    def mark(held: list[int]) -> None:
        if not database_up[0]:
            raise OperationalError("database is locked")

    beat = Beat(
        lambda: [7],
        interval_s=5,
        lost_after_s=30,
        mark=mark,
        reap=lambda held, lost_after_s: reaped_at.append(now),
        catch_up=lambda limit, skip: set(),
    )
    now = 0.0
    beat.beat(now)
    database_up[0] = False
    for now in (5.0, 10.0, 60.0):  # nobody could mark their calls meanwhile
        beat.beat(now)
    database_up[0] = True
    for now in (65.0, 70.0, 90.0, 94.0, 95.0, 100.0):
        beat.beat(now)

    # Back at 65 s: not one reap until 30 s later, when every process had marked its calls.
    assert reaped_at == [0.0, 95.0, 100.0]
