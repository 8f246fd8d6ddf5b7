"""The host's signals (`calls.signals`): sent once their rows are committed, off the audio path.

Each test drives a `RecordWriter` of its own, handing what it commits to a
`HostDispatcher` of its own, and writes by calling `write_pending()` (as in
test_recorder). Receivers tell the test what they got through threading
events it awaits; a slow receiver blocks on an event the test sets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from callcore.records import RecordKind
from calls import signals
from calls.live.announce import SIGNAL_NAMES, announcements
from calls.live.host import HostDispatcher
from calls.live.recorder import CallRecorder
from calls.live.writer import RecordWriter, write_batch
from calls.models import BargeInEvent, CallSession, PlayoutLog
from tests.calls.fakes import sample_barge_in

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")
SID = "CA" + "5" * 32
WAIT_S = 10


class Heard:
    """What receivers got, in order, and an event per signal name to await."""

    def __init__(self) -> None:
        self.signals: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def event(self, name: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(name, threading.Event())

    def heard(self, name: str, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.signals.append((name, kwargs))
        self.event(name).set()

    def receiver(self, name: str) -> Callable[..., None]:
        def receive(sender: Any, signal: Any, **kwargs: Any) -> None:
            assert sender is CallSession
            self.heard(name, kwargs)

        return receive

    async def wait(self, name: str) -> None:
        assert await asyncio.to_thread(self.event(name).wait, WAIT_S), f"no {name}"

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.signals]


Listen = Callable[[Any, Callable[..., Any]], None]


@pytest.fixture
def listen() -> Iterator[Listen]:
    """Connect a receiver for this test only."""
    connected: list[tuple[Any, Callable[..., Any]]] = []

    def connect(signal: Any, receiver: Callable[..., Any]) -> None:
        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


def hear_all(listen: Listen) -> Heard:
    """Every signal, heard by one plain receiver each (after those connected before)."""
    heard = Heard()
    for name in signals.__all__:
        listen(getattr(signals, name), heard.receiver(name))
    return heard


@pytest.fixture
def heard(listen: Listen) -> Heard:
    return hear_all(listen)


class Pipeline:
    """A host of the test's own and the writers that hand it their commits."""

    def __init__(self, host: HostDispatcher) -> None:
        self.host = host
        self.writers: list[RecordWriter] = []

    def writer(
        self,
        write: Callable[[Any], None] | None = None,
        committed: Callable[[Any, Any], None] | None = None,
    ) -> RecordWriter:
        """A writer whose thread never wakes on its own within a test."""
        writer = RecordWriter(
            interval_s=3600, write=write, committed=committed or self.host.committed
        )
        self.writers.append(writer)
        return writer


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
async def pipeline(clock: SteppedClock) -> AsyncIterator[Pipeline]:
    pipeline = Pipeline(HostDispatcher(clock=clock))
    yield pipeline
    for writer in pipeline.writers:
        await asyncio.to_thread(writer.close)
    await asyncio.to_thread(pipeline.host.close)


async def write_now(writer: RecordWriter) -> bool:
    return await database_sync_to_async(writer.write_pending)()


@database_sync_to_async
def new_call(sid: str = SID) -> CallSession:
    return CallSession.objects.create(
        call_sid=sid, from_number="+15550100", to_number="+15550199", agent_name="front_desk"
    )


def from_another_thread(query: Callable[[], T]) -> T:
    """`query` on a thread and connection of its own: what any other reader sees."""
    result: list[T] = []

    def run() -> None:
        try:
            result.append(query())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(WAIT_S)
    return result[0]


def host_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "callbridge-host"]


def recorder_for(call: CallSession, writer: RecordWriter, started: float = 100.0) -> CallRecorder:
    return CallRecorder(call.pk, timezone.now(), started, writer=writer)


def kinds_committed(call_pk: int) -> list[str]:
    return from_another_thread(
        lambda: list(
            PlayoutLog.objects.filter(call_id=call_pk).order_by("id").values_list("kind", flat=True)
        )
    )


async def test_each_signal_comes_with_its_arguments_once_its_row_is_committed(
    pipeline: Pipeline, listen: Listen
) -> None:
    call = await new_call()
    writer = pipeline.writer()
    recorder = recorder_for(call, writer)
    # What another connection could read when each receiver ran.
    committed_then: dict[str, Any] = {}

    def reads_back(sender: Any, signal: Any, call_pk: int, **kwargs: Any) -> None:
        kinds = kinds_committed(call_pk)
        barge_ins = from_another_thread(BargeInEvent.objects.filter(call_id=call_pk).count)
        committed_then[signals_by_object[signal]] = (kinds, barge_ins)

    signals_by_object = {getattr(signals, name): name for name in signals.__all__}
    for name in signals.__all__:
        listen(getattr(signals, name), reads_back)
    heard = hear_all(listen)

    recorder.log(RecordKind.STREAM_STARTED, 100.0)
    recorder.barge_in(sample_barge_in(101.25).reacted(101.2502))
    recorder.log(
        RecordKind.TOOL_CALL,
        102.0,
        "playout_idle",
        call_id="fc1",
        name="order_status",
        arguments={"order_number": "[redacted]"},
        outcome="ok",
        error="",
        duration_ms=42,
        caller_spoke=False,
    )
    recorder.log(
        RecordKind.STREAM_ENDED, 103.0, end_reason="transferred", transfer_target="+15550111"
    )
    recorder.update_call({"end_reason": "transferred"}, ended_at=103.0)
    assert await write_now(writer)
    await heard.wait("call_ended")

    call_facts = {"call_sid": SID, "call_pk": call.pk}
    assert heard.signals == [
        (
            "call_started",
            {
                **call_facts,
                "from_number": "+15550100",
                "to_number": "+15550199",
                "agent_name": "front_desk",
            },
        ),
        (
            "barge_in",
            {
                **call_facts,
                "figures": {
                    "offset_ms": 1250,
                    "playout_remaining_ms": 4300,
                    "audio_end_ms": 1200,
                    "reaction_ms": 0.2,
                    "heard_text": "Hello there",
                    "cut_text": "and welcome",
                    "response_cancelled": False,
                },
            },
        ),
        (
            "tool_called",
            {
                **call_facts,
                "name": "order_status",
                "outcome": "ok",
                "duration_ms": 42,
                "arguments": {"order_number": "[redacted]"},
            },
        ),
        ("call_transferred", {**call_facts, "target": "+15550111"}),
        ("call_ended", {**call_facts, "end_reason": "transferred"}),
    ]
    # Each receiver ran once every row it announces could be read elsewhere.
    every_kind = ["stream_started", "barge_in", "tool_call", "stream_ended"]
    assert committed_then == {name: (every_kind, 1) for name in signals.__all__}


def test_a_commits_signals_come_call_by_call_in_the_order_of_their_rows_ends_last() -> None:
    at = timezone.now()
    transferred = {"end_reason": "transferred", "transfer_target": "+15550111"}
    logs = [
        (1, "stream_started", at, 0, "", {}),
        (2, "stream_ended", at, 900, "", transferred),
        (1, "stream_ended", at, 500, "", {"end_reason": "caller_hangup"}),
        (1, "tool_call", at, 700, "", {"name": "order_status"}),  # finished after the end
        (1, "dtmf", at, 800, "", {"digit": "1"}),
    ]
    barge_ins = [(1, at, 300, {"playout_remaining_ms": 900})]

    every = announcements(logs, barge_ins, SIGNAL_NAMES)
    only_ends = announcements(logs, barge_ins, {signals.call_ended})

    assert [(a.call_pk, a.name) for a in every] == [
        (1, "call_started"),
        (1, "barge_in"),
        (1, "tool_called"),
        (1, "call_ended"),
        (2, "call_transferred"),
        (2, "call_ended"),
    ]
    assert every[2].named == {
        "name": "order_status",
        "outcome": "",
        "duration_ms": 0,
        "arguments": {},
    }
    assert [(a.call_pk, a.named) for a in only_ends] == [
        (1, {"end_reason": "caller_hangup"}),
        (2, {"end_reason": "transferred"}),
    ]


async def test_nothing_is_queued_while_no_receiver_listens(pipeline: Pipeline) -> None:
    call = await new_call()
    writer = pipeline.writer()
    recorder_for(call, writer).log(RecordKind.STREAM_STARTED, 100.0)
    assert await write_now(writer)

    # No thread started, no row read: a host without receivers pays nothing.
    assert not host_threads()


async def test_an_async_receiver_runs_on_a_loop_of_the_hosts_own(
    pipeline: Pipeline, heard: Heard, listen: Listen
) -> None:
    call = await new_call()
    seen: dict[str, Any] = {}

    async def receive(sender: Any, call_sid: str, **kwargs: Any) -> None:
        seen["loop"] = asyncio.get_running_loop()
        # What it hands to sync code (the async ORM does the same) runs on the host's
        # thread, not the executor the consumers share.
        seen["sync_thread"] = await sync_to_async(lambda: threading.current_thread().name)()
        seen["row"] = await CallSession.objects.filter(call_sid=call_sid).aexists()
        heard.heard("async", {"call_sid": call_sid})

    listen(signals.call_started, receive)
    writer = pipeline.writer()
    recorder_for(call, writer).log(RecordKind.STREAM_STARTED, 100.0)
    assert await write_now(writer)
    await heard.wait("async")

    assert seen["loop"] is not asyncio.get_running_loop()
    assert seen["sync_thread"] == "callbridge-host"
    assert seen["row"] is True
    assert heard.signals[-1] == ("async", {"call_sid": SID})


async def test_a_raising_receiver_is_logged_and_the_others_still_hear(
    pipeline: Pipeline, heard: Heard, listen: Listen, caplog: pytest.LogCaptureFixture
) -> None:
    def raising(sender: Any, **kwargs: Any) -> None:
        raise ValueError("the host's bug, with +15550100 in it")

    listen(signals.call_started, raising)
    listen(signals.call_started, heard.receiver("after_raising"))
    call = await new_call()
    writer = pipeline.writer()
    recorder = recorder_for(call, writer)
    recorder.log(RecordKind.STREAM_STARTED, 100.0)
    recorder.log(RecordKind.STREAM_ENDED, 101.0, end_reason="caller_hangup")
    assert await write_now(writer)
    await heard.wait("call_ended")

    assert heard.names() == ["call_started", "after_raising", "call_ended"]
    lines = [r.getMessage() for r in caplog.records if r.name == "calls.live.host"]
    assert lines == [
        "receiver tests.calls.test_signals.test_a_raising_receiver_is_logged_and_the_others_"
        f"still_hear.<locals>.raising of call_started failed for call {SID} (ValueError)"
    ]


async def test_a_raising_hook_is_logged_and_the_next_one_runs(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    heard = Heard()

    def keypad(call_sid: str, digits: str) -> None:
        raise KeyError(digits)

    async def keypad_async(call_sid: str, digits: str) -> None:
        heard.heard("async_hook", {"call_sid": call_sid, "digits": digits})

    pipeline.host.call(SID, keypad, SID, digits="1234")
    pipeline.host.call(SID, keypad_async, SID, digits="5")
    await heard.wait("async_hook")

    assert heard.signals == [("async_hook", {"call_sid": SID, "digits": "5"})]
    [line] = [r for r in caplog.records if r.name == "calls.live.host"]
    assert line.getMessage() == (
        "host hook tests.calls.test_signals.test_a_raising_hook_is_logged_and_the_next_one_"
        f"runs.<locals>.keypad failed for call {SID} (KeyError)"
    )
    assert line.exc_info is not None


async def test_a_slow_receiver_holds_back_no_commit_and_is_reported(
    pipeline: Pipeline,
    heard: Heard,
    listen: Listen,
    clock: SteppedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(sender: Any, **kwargs: Any) -> None:
        entered.set()
        clock.now += 2.5  # what the host's clock says it took
        release.wait(WAIT_S)

    listen(signals.call_started, slow)
    call = await new_call()
    writer = pipeline.writer()
    recorder = recorder_for(call, writer)
    recorder.log(RecordKind.STREAM_STARTED, 100.0)
    assert await write_now(writer)
    assert await asyncio.to_thread(entered.wait, WAIT_S)

    # The receiver still holds the host's thread: the writer commits on regardless.
    recorder.log(RecordKind.STREAM_ENDED, 101.0, end_reason="caller_hangup")
    assert await write_now(writer)
    assert await asyncio.to_thread(kinds_committed, call.pk) == ["stream_started", "stream_ended"]
    assert "call_ended" not in heard.names()

    release.set()
    await heard.wait("call_ended")
    slow_lines = [r for r in caplog.records if "took" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in slow_lines] == [
        (
            "WARNING",
            f"signal call_started for call {SID} took 2.5 s: the host's signals wait for it",
        )
    ]


async def test_rows_of_a_failed_commit_are_heard_of_once_after_the_retry(
    pipeline: Pipeline, heard: Heard
) -> None:
    call = await new_call()
    outage = [True]
    commits: list[str] = []  # what the writer's transactions came to, and when it told the host

    def commit_then_fail(batch: Any) -> None:
        with transaction.atomic():
            write_batch(batch)  # the rows go in, and are rolled back
            if outage[0]:
                commits.append("rolled back")
                raise OperationalError("the database went away mid-commit")
        commits.append("committed")

    def told(logs: Any, barge_ins: Any) -> None:
        commits.append(f"told of {len(logs) + len(barge_ins)} rows")
        pipeline.host.committed(logs, barge_ins)

    writer = pipeline.writer(commit_then_fail, told)
    recorder = recorder_for(call, writer)
    recorder.log(RecordKind.STREAM_STARTED, 100.0)
    recorder.log(RecordKind.TOOL_CALL, 101.0, name="order_status", outcome="timeout")
    assert await write_now(writer) is False
    assert await asyncio.to_thread(kinds_committed, call.pk) == []
    recorder.log(RecordKind.STREAM_ENDED, 102.0, end_reason="caller_hangup")

    outage[0] = False
    assert await write_now(writer) is True
    await heard.wait("call_ended")

    assert commits == ["rolled back", "committed", "told of 3 rows"]
    # Anything sent for the failed attempt would have come first: the queue is in order.
    assert heard.names() == ["call_started", "tool_called", "call_ended"]


async def test_rows_the_database_refuses_are_never_heard_of(
    pipeline: Pipeline, heard: Heard
) -> None:
    call = await new_call()
    writer = pipeline.writer()
    gone = CallRecorder(999_999, timezone.now(), 100.0, writer=writer)
    gone.log(RecordKind.STREAM_STARTED, 100.0)
    alive = recorder_for(call, writer)
    alive.log(RecordKind.STREAM_ENDED, 100.0, end_reason="caller_hangup")
    assert await write_now(writer) is True
    await heard.wait("call_ended")

    ended = {"call_sid": SID, "call_pk": call.pk, "end_reason": "caller_hangup"}
    assert heard.signals == [("call_ended", ended)]


async def test_a_full_queue_drops_the_newest_with_one_warning(
    clock: SteppedClock, heard: Heard, listen: Listen, caplog: pytest.LogCaptureFixture
) -> None:
    host = HostDispatcher(max_queued=1, clock=clock)
    pipeline = Pipeline(host)
    entered, release = threading.Event(), threading.Event()

    def first_blocks(sender: Any, call_pk: int, **kwargs: Any) -> None:
        if not entered.is_set():
            entered.set()
            release.wait(WAIT_S)

    listen(signals.call_started, first_blocks)
    writer = pipeline.writer()
    calls = [await new_call("CA" + str(i) * 32) for i in range(4)]
    try:
        recorder_for(calls[0], writer).log(RecordKind.STREAM_STARTED, 100.0)
        assert await write_now(writer)
        assert await asyncio.to_thread(entered.wait, WAIT_S)
        # The host's thread is held: one signal waits, the two after it find no room.
        for call in calls[1:]:
            recorder_for(call, writer).log(RecordKind.STREAM_STARTED, 100.0)
        assert await write_now(writer)  # never blocked by the full queue
        assert host.dropped == 2
        release.set()
    finally:
        release.set()
        await asyncio.to_thread(writer.close)
        await asyncio.to_thread(host.close)

    sids = [kwargs["call_sid"] for name, kwargs in heard.signals]
    assert sids == [calls[0].call_sid, calls[1].call_sid]
    full = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in full] == [
        (
            "WARNING",
            "host signal queue full (1 waiting, a receiver is slow): dropping what comes, "
            f"from call {calls[2].pk}'s signal call_started on, until it has caught up",
        )
    ]


async def test_close_sends_what_is_queued_then_stops(pipeline: Pipeline) -> None:
    heard = Heard()
    entered, release = threading.Event(), threading.Event()

    def held(call_sid: str) -> None:
        entered.set()
        release.wait(WAIT_S)

    host = pipeline.host
    host.call(SID, held, SID)
    assert await asyncio.to_thread(entered.wait, WAIT_S)
    for i in range(3):
        host.call(SID, heard.heard, f"queued {i}", {})
    release.set()
    await asyncio.to_thread(host.close, WAIT_S)

    assert heard.names() == ["queued 0", "queued 1", "queued 2"]
    assert not host_threads()


async def test_the_process_hands_its_writers_commits_to_its_host(
    call_process: Any, heard: Heard
) -> None:
    call = await new_call()
    writer = call_process.writer
    recorder_for(call, writer, started=time.monotonic()).log(
        RecordKind.STREAM_STARTED, time.monotonic()
    )
    assert await write_now(writer)
    await heard.wait("call_started")

    assert heard.signals[0][1]["call_sid"] == SID
