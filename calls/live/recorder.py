"""Persistence of one call's records, handed to the process's writer off the audio path.

The bridge records synchronously (a tuple handed to `RecordWriter`, which
writes every call's rows in batches from a thread of its own). A failed write
keeps its rows for the next attempt; `close()` waits, bounded, for this
call's rows to be in the database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from callcore.outputs import BargeIn
from callcore.records import CallState, EndReason, RecordKind
from calls.live.writer import RecordWriter

logger = logging.getLogger(__name__)


class CallRecorder:
    """PlayoutLog and BargeInEvent rows and CallSession updates for one call.

    Times are monotonic seconds (`at`); rows get `offset_ms` since the stream
    started and a wall-clock `occurred_at` derived from the same anchor, so the
    two always agree.
    """

    def __init__(
        self,
        call_pk: int,
        stream_started_wall: datetime,
        stream_started_mono: float,
        writer: RecordWriter,
    ) -> None:
        self._call_pk = call_pk
        self._wall0 = stream_started_wall
        self._mono0 = stream_started_mono
        self._writer = writer
        # Whether the call's end (its `end_reason`) has been handed to the writer.
        self.ended = False

    def offset_ms(self, at: float) -> int:
        return round((at - self._mono0) * 1000)

    def wall(self, at: float) -> datetime:
        return self._wall0 + timedelta(seconds=at - self._mono0)

    def log(self, kind: str, at: float, playout_status: str = "", **details: Any) -> None:
        self._writer.log(
            (self._call_pk, kind, self.wall(at), self.offset_ms(at), playout_status, details)
        )

    def barge_in(self, barge_in: BargeIn) -> None:
        """A barge-in whose clear was sent: a row in the playout log, and one of its own."""
        at = barge_in.at
        self.log(RecordKind.BARGE_IN, at, barge_in.playout_status, **barge_in.log_details())
        fields = {**asdict(barge_in.figures), "details": barge_in.evidence}
        self._writer.barge_in((self._call_pk, self.wall(at), self.offset_ms(at), fields))

    def update_call(self, fields: dict[str, Any], ended_at: float | None = None) -> None:
        """Fields of the call's row; `ended_at` (monotonic) is written as its end time."""
        if ended_at is not None:
            fields = {**fields, "ended_at": self.wall(ended_at)}
        self._writer.update_call(self._call_pk, fields)
        if "end_reason" in fields:
            self.ended = True

    def end_at_exit(self) -> None:
        """The process is exiting under this call (its server stopped without letting it
        end): its end, unless it was recorded already."""
        if self.ended:
            return
        now = time.monotonic()
        reason = EndReason.SERVER_SHUTDOWN
        self.log(RecordKind.STREAM_ENDED, now, end_reason=reason, at_process_exit=True)
        fields = {"status": str(CallState.COMPLETED), "end_reason": str(reason)}
        self.update_call(fields, ended_at=now)

    async def close(self) -> None:
        """Return once this call's rows are written (bound it with `asyncio.wait_for`)."""
        await self._writer.flushed()
