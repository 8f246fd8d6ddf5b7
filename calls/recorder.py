"""Persistence of one call's decisions, written in batches off the audio path.

The bridge records synchronously into memory (a list append); a task of the
recorder's own writes batches to the database every `flush_interval_s`. A
failed write keeps its rows for the next attempt, and `close()` makes a last
one, so nothing recorded is lost to a slow or briefly failing database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.db import transaction

from calls.models import BargeInEvent, CallSession, PlayoutLog

logger = logging.getLogger(__name__)


class CallRecorder:
    """Buffers PlayoutLog and BargeInEvent rows and CallSession updates for one call.

    Times are monotonic seconds (`at`); rows get `offset_ms` since the stream
    started and a wall-clock `occurred_at` derived from the same anchor, so the
    two always agree.
    """

    def __init__(
        self,
        call_pk: int,
        stream_started_wall: datetime,
        stream_started_mono: float,
        flush_interval_s: float = 0.5,
    ) -> None:
        self._call_pk = call_pk
        self._wall0 = stream_started_wall
        self._mono0 = stream_started_mono
        self._flush_interval_s = flush_interval_s
        self._logs: list[PlayoutLog] = []
        self._barge_ins: list[BargeInEvent] = []
        self._call_fields: dict[str, Any] = {}
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Future[None]] = set()
        self.rows_written = 0

    def offset_ms(self, at: float) -> int:
        return round((at - self._mono0) * 1000)

    def wall(self, at: float) -> datetime:
        return self._wall0 + timedelta(seconds=at - self._mono0)

    def log(self, kind: str, at: float, playout_status: str = "", **details: Any) -> None:
        self._logs.append(
            PlayoutLog(
                call_id=self._call_pk,
                kind=kind,
                occurred_at=self.wall(at),
                offset_ms=self.offset_ms(at),
                playout_status=playout_status,
                details=details,
            )
        )

    def barge_in(self, at: float, **fields: Any) -> None:
        self._barge_ins.append(
            BargeInEvent(
                call_id=self._call_pk,
                occurred_at=self.wall(at),
                offset_ms=self.offset_ms(at),
                **fields,
            )
        )
        # Barge-ins are what reviewers look for first: write them promptly.
        self._wake.set()

    def update_call(self, **fields: Any) -> None:
        self._call_fields.update(fields)

    @property
    def pending_rows(self) -> int:
        return len(self._logs) + len(self._barge_ins) + (1 if self._call_fields else 0)

    def start(self) -> None:
        """Start writing in the background; `close` stops it."""
        self._task = asyncio.create_task(self._run(), name="call-recorder")

    async def _run(self) -> None:
        # Never cancelled: a write cancelled half-way could lose its rows, so
        # `close` asks the loop to stop and waits for the write in progress.
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval_s)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write what is buffered; True when everything is written."""
        async with self._write_lock:
            if not self.pending_rows:
                return True
            logs, barge_ins, fields = self._logs, self._barge_ins, self._call_fields
            self._logs, self._barge_ins, self._call_fields = [], [], {}
            write = asyncio.ensure_future(
                database_sync_to_async(self._write)(logs, barge_ins, fields)
            )
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)
            try:
                # Shielded: if our caller is cancelled, the write still completes
                # (its thread cannot be stopped anyway) and its rows are not lost.
                await asyncio.shield(write)
            except Exception:
                logger.exception(
                    "could not write %d call records; keeping them for the next attempt",
                    len(logs) + len(barge_ins),
                )
                self._logs[:0] = logs
                self._barge_ins[:0] = barge_ins
                self._call_fields = {**fields, **self._call_fields}
                return False
            self.rows_written += len(logs) + len(barge_ins)
            return True

    async def close(self) -> None:
        """Stop the background writer, then a final write; logs loudly what is lost."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait([self._task])
        if self._writes:  # a write whose caller was cancelled still finishes first
            await asyncio.wait(list(self._writes))
        if not await self.flush():
            logger.error("call records lost at close: %d rows", self.pending_rows)

    def _write(
        self, logs: list[PlayoutLog], barge_ins: list[BargeInEvent], fields: dict[str, Any]
    ) -> None:
        with transaction.atomic():
            if logs:
                PlayoutLog.objects.bulk_create(logs)
            if barge_ins:
                BargeInEvent.objects.bulk_create(barge_ins)
            if fields:
                CallSession.objects.filter(pk=self._call_pk).update(**fields)
