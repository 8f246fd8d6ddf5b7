"""The process's one database writer for call records: every live call's rows, batched.

It only batches and retries: what else the process does with the database
(liveness, reaping, stored reviews) is the beat's (`calls.live.beat`), which
the writer tells, through `after_write`, of the calls whose end it wrote; what
a host hears of them is `calls.live.host`'s, handed the rows of each commit,
once committed, through `committed`.

Calls hand rows over as plain tuples (a lock and an append, nothing else on
the event loop). A thread of the writer's own wakes every `interval_s` and
writes everything pending, of every call, in one transaction on one kept
connection; sooner for a barge-in or a call waiting for its end, but never
within `gather_s` of the write before (at 100 calls, 24 transactions a run
rather than 180). Nothing waits for it on the audio path, and it never queues on
the executor that `sync_to_async` shares with the rest of Django.

A failed write keeps its rows, in order, for the next attempt, retried with
backoff (up to `retry_max_s` apart) for as long as the database is away; a
call that ended meanwhile has its final record written when it returns.
`flushed()` lets a call that is ending await its own rows (bounded by its
caller), and `close()` makes a last attempt when the process stops.

An outage is one ERROR line when it starts, a WARNING a minute while it lasts
and one line when the database is back, never a traceback per attempt. Rows
wait in a bounded buffer (`max_pending_rows`): past it, new playout-log rows
are dropped with one ERROR (barge-ins and call updates are always kept).

What a SIGKILL loses: the rows handed over since the last write, at most
`interval_s` (0.5 s) of records while the database is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import InterfaceError, OperationalError, connection, transaction

from calls.sql import insert_rows, update_rows

logger = logging.getLogger(__name__)

# (call_pk, kind, occurred_at, offset_ms, playout_status, details)
LogRow = tuple[int, str, datetime, int, str, dict[str, Any]]
# (call_pk, occurred_at, offset_ms, fields)
BargeInRow = tuple[int, datetime, int, dict[str, Any]]


@dataclass
class _Pending:
    logs: list[LogRow] = field(default_factory=list)
    barge_ins: list[BargeInRow] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.logs) + len(self.barge_ins) + len(self.calls)

    def by_call(self) -> dict[int, _Pending]:
        """The same rows, one batch per call, in order."""
        out: dict[int, _Pending] = {}
        for row in self.logs:
            out.setdefault(row[0], _Pending()).logs.append(row)
        for barge_in in self.barge_ins:
            out.setdefault(barge_in[0], _Pending()).barge_ins.append(barge_in)
        for pk, fields in self.calls.items():
            out.setdefault(pk, _Pending()).calls[pk] = fields
        return out

    def put_back(self, newer: _Pending) -> None:
        """Self failed to write: it goes before `newer`, whose call fields win."""
        self.logs += newer.logs
        self.barge_ins += newer.barge_ins
        for pk, fields in newer.calls.items():
            self.calls[pk] = {**self.calls.get(pk, {}), **fields}


Write = Callable[["_Pending"], None]
# Told, on the writer's thread, of the rows a transaction just committed, in order.
Committed = Callable[[Sequence[LogRow], Sequence[BargeInRow]], None]


def _transient(exc: BaseException) -> bool:
    """A failure worth retrying as is: the database unreachable, locked or restarting.

    Anything else (a constraint, a value the database refuses) would fail the
    same way forever, and must not hold back every other call's records.
    """
    return isinstance(exc, OperationalError | InterfaceError)


# Records kept while the database is away: about ten minutes of 100 calls' rows.
MAX_PENDING_ROWS = 200_000
# While the database stays away, a reminder this often.
OUTAGE_REMINDER_S = 60.0


class RecordWriter:
    """Batches call records of the whole process into one transaction per interval.

    `write` writes one batch in one transaction (tests inject failures here);
    `clock` is monotonic seconds (tests step it).
    """

    def __init__(
        self,
        interval_s: float = 0.5,
        retry_max_s: float = 5.0,
        write: Write | None = None,
        max_pending_rows: int = MAX_PENDING_ROWS,
        clock: Callable[[], float] = time.monotonic,
        after_write: Callable[[set[int]], None] | None = None,
        gather_s: float = 0.1,
        committed: Committed | None = None,
    ) -> None:
        self._write = write if write is not None else write_batch
        self.interval_s = interval_s
        # A write woken early (a barge-in, a call waiting for its end) still comes
        # at least this long after the one before: at 100 calls, the rows of the
        # others join it, in a few large transactions rather than many small ones.
        self.gather_s = gather_s
        self.retry_max_s = retry_max_s
        self.max_pending_rows = max_pending_rows
        self._clock = clock
        # Told, on the writer's thread, of the calls whose end a write just stored.
        self._after_write = after_write
        self._committed = committed
        self._lock = threading.Lock()
        # Held for a whole write: `_written` may only move once the rows it covers
        # are in the database, so writes never overlap.
        self._write_lock = threading.Lock()
        self._pending = _Pending()
        # Every submission bumps `_submitted`; a write that took everything up to
        # `seq` sets `_written` to it. A waiter for `seq` is done once written >= seq.
        self._submitted = 0
        self._written = 0
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._wake = threading.Event()
        # Set by `close()`: the process is stopping.
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.rows_dropped = 0
        self.failures = 0
        # The current outage: when it began, when it was last reported, rows lost to
        # the full buffer during it (None: the database is up).
        self._outage_since: float | None = None
        self._outage_reported = 0.0
        self._overflowed = 0

    # --- the event loop's side -------------------------------------------------------

    def log(self, row: LogRow) -> None:
        with self._lock:
            if len(self._pending.logs) >= self.max_pending_rows:
                self._overflow()
                return
            self._pending.logs.append(row)
            self._submitted += 1
        self._ensure_thread()

    def _overflow(self) -> None:
        """A log row that does not fit (the lock is held): dropped, said once an outage."""
        self.rows_dropped += 1
        self._overflowed += 1
        if self._overflowed == 1:
            logger.error(
                "call record buffer full (%d rows waiting for the database): new playout "
                "log rows are dropped until it is back (barge-ins and call ends are kept)",
                self.max_pending_rows,
            )

    def barge_in(self, row: BargeInRow) -> None:
        with self._lock:
            self._pending.barge_ins.append(row)
            self._submitted += 1
        self._ensure_thread()
        # Barge-ins are what reviewers look for first: write them promptly.
        self._wake.set()

    def update_call(self, call_pk: int, fields: dict[str, Any]) -> None:
        with self._lock:
            current = self._pending.calls.setdefault(call_pk, {})
            current.update(fields)
            self._submitted += 1
        self._ensure_thread()

    @property
    def pending_rows(self) -> int:
        with self._lock:
            return len(self._pending)

    async def flushed(self) -> None:
        """Return once everything submitted so far is in the database (never gives up).

        Callers bound the wait themselves (`asyncio.wait_for`); a timeout
        leaves the rows with the writer, which keeps retrying.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            target = self._submitted
            if self._written >= target:
                return
            self._waiters.append((target, loop, future))
        self._ensure_thread()
        self._wake.set()
        await future

    # --- the writer thread ---------------------------------------------------------------

    def start(self) -> None:
        """Start the writer's thread now (it also starts with the first row handed over)."""
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._stop.clear()
                    self._thread = threading.Thread(
                        target=self._run, name="call-record-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        backoff_s = 0.0
        last_write = -math.inf
        while True:
            if not self._stop.is_set():
                self._wake.wait(max(self.interval_s, backoff_s))
                self._stop.wait(last_write + self.gather_s - time.monotonic())
            self._wake.clear()
            last_write = time.monotonic()
            written = self.write_pending()
            if written:
                backoff_s = 0.0
            else:
                backoff_s = min(max(2 * backoff_s, self.interval_s), self.retry_max_s)
            # Stopping: rows handed over during that write (the ends of the calls the
            # process exits under) get one more, unless the database refused it.
            if self._stop.is_set() and not (written and self.pending_rows):
                break
        connection.close()

    def write_pending(self) -> bool:
        """Write what is pending now, in this thread; True when it is all written."""
        with self._write_lock:
            return self._write_pending()

    def _write_pending(self) -> bool:
        with self._lock:
            batch, self._pending = self._pending, _Pending()
            seq = self._submitted
        if batch:
            try:
                self._write(batch)
            except Exception as exc:
                if _transient(exc):
                    return self._keep(batch, exc)
                left = self._write_call_by_call(batch)
                if left is not None:
                    # The calls written before the error are in: their ends are stored.
                    self._ends_written(_ended(batch) - _ended(left[0]))
                    return self._keep(left[0], left[1])
            else:
                self.rows_written += len(batch.logs) + len(batch.barge_ins)
                self._tell_committed(batch)
            self._ends_written(_ended(batch))
        self._outage_over(len(batch))
        with self._lock:
            self._written = max(self._written, seq)
            done = [w for w in self._waiters if w[0] <= self._written]
            self._waiters = [w for w in self._waiters if w[0] > self._written]
        for _, loop, future in done:
            # A closed event loop raises: nobody waits there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)
        return True

    def _tell_committed(self, batch: _Pending) -> None:
        if self._committed is not None:
            try:
                self._committed(batch.logs, batch.barge_ins)
            except Exception:  # the rows are written; what follows is not the writer's
                logger.exception("committed hook failed")

    def _ends_written(self, call_pks: set[int]) -> None:
        if call_pks and self._after_write is not None:
            try:
                self._after_write(call_pks)
            except Exception:  # the rows are written; what follows is not the writer's
                logger.exception("after-write hook failed")

    def _keep(self, batch: _Pending, exc: BaseException) -> bool:
        self.failures += 1
        now = self._clock()
        if self._outage_since is None:
            self._outage_since = self._outage_reported = now
            logger.error(
                "database unavailable (%s: %s): keeping %d call records, retrying "
                "at most every %.0f s",
                type(exc).__name__,
                _first_line(exc),
                len(batch),
                self.retry_max_s,
            )
        elif now - self._outage_reported >= OUTAGE_REMINDER_S:
            self._outage_reported = now
            logger.warning(
                "database still unavailable after %.0f s (%s): %d call records waiting",
                now - self._outage_since,
                _first_line(exc),
                len(batch) + len(self._pending),
            )
        connection.close()  # the next attempt reconnects
        with self._lock:
            batch.put_back(self._pending)
            self._pending = batch
        return False

    def _outage_over(self, written: int) -> None:
        if self._outage_since is None:
            return
        lasted = self._clock() - self._outage_since
        with self._lock:
            dropped, self._overflowed = self._overflowed, 0
        self._outage_since = None
        self._db_back_at = self._clock()
        log = logger.error if dropped else logger.warning
        log(
            "database back after %.1f s: wrote %d call records kept meanwhile%s",
            lasted,
            written,
            f", {dropped} dropped for want of room" if dropped else "",
        )

    def _write_call_by_call(self, batch: _Pending) -> tuple[_Pending, BaseException] | None:
        """After a data error: each call on its own, so one bad call holds back no other.

        Rows the database refuses for good are dropped, loudly. Returns what is
        left to retry after a transient error, if one comes.
        """
        calls = list(batch.by_call().items())
        for index, (pk, rows) in enumerate(calls):
            try:
                self._write(rows)
            except Exception as exc:
                if _transient(exc):
                    left = _Pending()
                    for _, later in calls[index:]:
                        left.put_back(later)
                    return left, exc
                self.rows_dropped += len(rows)
                logger.error(
                    "dropping %d records of call %d that the database refuses (%s: %s)",
                    len(rows),
                    pk,
                    type(exc).__name__,
                    _first_line(exc),
                )
            else:
                self.rows_written += len(rows.logs) + len(rows.barge_ins)
                self._tell_committed(rows)
        return None

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is left and stop the thread (the process is stopping); bounded."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout_s)
        if thread.is_alive() or self.pending_rows:
            logger.error("call records not written at exit: %d rows pending", self.pending_rows)


def _ended(batch: _Pending) -> set[int]:
    """The calls whose end (`end_reason`) this batch writes."""
    return {pk for pk, fields in batch.calls.items() if "end_reason" in fields}


def _first_line(exc: BaseException) -> str:
    """The error's first line, bounded (no traceback, no multi-line driver detail)."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


LOG_FIELDS = (
    "call",
    "kind",
    "occurred_at",
    "offset_ms",
    "playout_status",
    "details",
    "onset_after_end_ms",
)


def write_batch(batch: _Pending) -> None:
    """Write one batch in one transaction."""
    from calls.models import BargeInEvent, CallSession, PlayoutLog

    started = time.monotonic()
    onset_of = PlayoutLog.onset_of
    with transaction.atomic():
        insert_rows(
            PlayoutLog,
            LOG_FIELDS,
            (
                (pk, kind, at, offset, status, details, onset_of(kind, details))
                for pk, kind, at, offset, status, details in batch.logs
            ),
        )
        if batch.barge_ins:
            BargeInEvent.objects.bulk_create(
                BargeInEvent(call_id=pk, occurred_at=at, offset_ms=offset, **fields)
                for pk, at, offset, fields in batch.barge_ins
            )
        # Calls updating the same fields (their start, their end) in one statement.
        shapes: dict[tuple[str, ...], list[tuple[int, list[Any]]]] = {}
        for pk, fields in batch.calls.items():
            shapes.setdefault(tuple(fields), []).append((pk, list(fields.values())))
        for names, rows in shapes.items():
            update_rows(CallSession, names, rows)
    elapsed_ms = 1000 * (time.monotonic() - started)
    logger.debug("wrote %d call records in %.1f ms", len(batch), elapsed_ms)
