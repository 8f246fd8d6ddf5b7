"""Database faults with calls in flight, the project served by Uvicorn on the test database.

A 20 s write lock (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's `LOCK TABLE ...
ACCESS EXCLUSIVE`) is taken from this process while a call goes on: the call
must not notice (no underrun, every answer heard in full, its audio reaching
the model all along), and every row it produced meanwhile must be in the
database once the lock is gone, its end included when the call ended under
the lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from django.db import connection

from calls.demo.simulation import database_url
from calls.models import CallSession, PlayoutLog
from simulators.realtime import RealtimeScript, Reply
from simulators.scenarios import GREETING
from simulators.stack import LocalStack
from simulators.twilio import CallerScript, Silence, SpeakWhenHeard

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="module"),
]

LOCK_S = 20.0
ANSWER_MS = 3000
# After the greeting, six answers of 3 s, each asked for 500 ms after the last
# one ended: the lock is taken after the greeting and held through five of them.
ANSWERS = 6
CONVERSATION = CallerScript(
    segments=(
        *(
            SpeakWhenHeard(
                tone=tone, after_ms=(600 if tone == 1 else ANSWER_MS) + 500, speech_ms=500
            )
            for tone in range(1, ANSWERS + 1)
        ),
        Silence(ANSWER_MS + 2000),
    ),
    hangup="stop",
)
SCRIPT = RealtimeScript(
    replies=(Reply(600, GREETING),), default_reply=Reply(ANSWER_MS, "Let me tell you more.")
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(django_db_setup: Any, django_db_blocker: Any) -> AsyncIterator[LocalStack]:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    env = {"AGENT_GREETING": GREETING}
    async with LocalStack(database_url=url, server="uvicorn", env=env) as running:
        yield running


@contextmanager
def write_lock(settings_dict: dict[str, Any]) -> Iterator[None]:
    """Hold the database's write lock (and, on PostgreSQL, the call tables) until exit."""
    taken = threading.Event()
    release = threading.Event()
    failed: list[BaseException] = []

    def hold() -> None:
        try:
            if settings_dict["ENGINE"].endswith("sqlite3"):
                lock = sqlite3.connect(str(settings_dict["NAME"]), isolation_level=None)
                lock.execute("BEGIN IMMEDIATE")
            else:
                import psycopg

                url = database_url(settings_dict).replace("postgres://", "postgresql://", 1)
                lock = psycopg.connect(url)  # type: ignore[assignment]
                lock.execute(
                    "LOCK TABLE calls_playoutlog, calls_bargeinevent, calls_callsession "
                    "IN ACCESS EXCLUSIVE MODE"
                )
            taken.set()
            release.wait()
            lock.rollback()
            lock.close()
        except BaseException as exc:  # reported to the test below
            failed.append(exc)
            taken.set()

    thread = threading.Thread(target=hold, name="db-lock")
    thread.start()
    taken.wait()
    try:
        if failed:
            raise failed[0]
        yield
    finally:
        release.set()
        thread.join()


@database_sync_to_async
def recorded(call_sid: str) -> tuple[CallSession | None, list[str]]:
    call = CallSession.objects.filter(call_sid=call_sid).first()
    kinds = list(PlayoutLog.objects.filter(call=call).values_list("kind", flat=True))
    return call, kinds


async def wait_recorded(
    call_sid: str, timeout_s: float = 30
) -> tuple[CallSession | None, list[str]]:
    """The call's rows once its end is written and its review stored, the server's
    last writes for it (the writer retries every few seconds; the review catches up
    at the next beat). A test that ended earlier would flush the database under
    those writes: its TRUNCATE and their transaction can deadlock."""
    deadline = time.monotonic() + timeout_s
    while True:
        call, kinds = await recorded(call_sid)
        done = call is not None and call.ended_at is not None and call.reviewed_at is not None
        if done or time.monotonic() > deadline:
            return call, kinds
        # Another process writes it, with no event to await: poll, bounded.
        await asyncio.sleep(0.1)


async def test_a_20_s_database_lock_is_not_heard_on_a_call_in_flight(stack: LocalStack) -> None:
    stack.queue_script(SCRIPT)
    before = len(stack.realtime.sessions)
    caller = stack.caller(CONVERSATION)
    call = asyncio.ensure_future(caller.run(timeout_s=60))
    try:
        await caller.wait_heard(1, 600, timeout_s=15)
        session = stack.realtime.sessions[before]
        with write_lock(connection.settings_dict):
            locked_at = time.monotonic()
            input_before = session.recording.input_audio_bytes
            # Held through the answers that take 20 s; the caller's hearing says when.
            await caller.wait_heard(ANSWERS, ANSWER_MS, timeout_s=40)
            held_s = time.monotonic() - locked_at
            reached_model = session.recording.input_audio_bytes - input_before
        timeline = await call
    finally:
        await caller.aclose()

    assert held_s >= LOCK_S
    assert timeline.underruns == []
    heard = timeline.heard_ms_by_tone()
    assert all(heard.get(tone, 0) >= ANSWER_MS - 25 for tone in range(2, ANSWERS + 2)), heard
    # The caller's audio kept reaching the model while the database was locked:
    # all but the last uplink chunk or two of what was said meanwhile.
    assert reached_model >= (held_s - 0.2) * 8000
    row, kinds = await wait_recorded(caller.call_sid)
    assert row is not None
    assert row.end_reason == "caller_hangup"
    assert row.reviewed_at is not None
    assert kinds.count("response_started") == ANSWERS + 1


async def test_a_call_that_ends_during_an_outage_is_recorded_in_full_afterwards(
    stack: LocalStack,
) -> None:
    script = CallerScript(
        segments=(SpeakWhenHeard(tone=1, after_ms=700, speech_ms=500), Silence(3000)),
        hangup="stop",
    )
    stack.queue_script(RealtimeScript(replies=(Reply(600, GREETING),)))
    caller = stack.caller(script)
    call = asyncio.ensure_future(caller.run(timeout_s=30))
    try:
        await caller.wait_heard(1, 20, timeout_s=15)
        with write_lock(connection.settings_dict):
            await call  # the call ends while nothing can be written
            during, _ = await recorded_unlocked_view(caller.call_sid)
    finally:
        await caller.aclose()

    row, kinds = await wait_recorded(caller.call_sid)
    assert row is not None
    assert row.ended_at is not None
    assert row.reviewed_at is not None
    assert row.end_reason == "caller_hangup"
    for kind in ("stream_started", "response_started", "response_done", "stream_ended"):
        assert kind in kinds
    assert during is None or during.ended_at is None


async def recorded_unlocked_view(call_sid: str) -> tuple[CallSession | None, list[str]]:
    """What a reader sees during the lock (SQLite in WAL mode still reads; PostgreSQL
    waits on an ACCESS EXCLUSIVE lock, so nothing is read there)."""
    if connection.vendor != "sqlite":
        return None, []
    return await recorded(call_sid)


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
async def test_a_server_shutdown_is_recorded_as_such(server: str) -> None:
    url = await database_sync_to_async(lambda: database_url(connection.settings_dict))()
    env = {"AGENT_GREETING": GREETING}
    async with LocalStack(database_url=url, server=server, env=env) as stack:  # type: ignore[arg-type]
        stack.queue_script(RealtimeScript(replies=(Reply(4000, GREETING),)))
        caller = stack.caller(CallerScript(segments=(Silence(20_000),)))
        call = asyncio.ensure_future(caller.run(timeout_s=30))
        try:
            await caller.wait_heard(1, 500, timeout_s=15)
            await stack.stop_server()
            timeline = await call
        finally:
            await caller.aclose()

    # The server closed the stream. With no other process, the handovers Twilio was
    # offered (while the stopping server could still answer) came back to it until
    # it stopped.
    assert timeline.closed_by == "server" or len(timeline.handovers) >= 1
    row, kinds = await wait_recorded(caller.call_sid, timeout_s=5)
    assert row is not None
    assert row.end_reason == "server_shutdown"
    assert "stream_ended" in kinds
