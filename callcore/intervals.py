"""When each answer was heard (playout intervals), and how good the estimate was (mark echoes)."""

from __future__ import annotations

from collections.abc import Sequence

from callcore.outputs import Record
from callcore.records import RecordKind
from playout import BYTES_PER_MS, AudioFrame, MarkEcho, Outbound


class PlayoutIntervals:
    """Turns frames sent and echoes judged into `playout_started`/`_ended` and `mark_stats` rows.

    A response's interval starts with its first frame sent and ends when the
    caller stops hearing it: the end of playout, or a barge-in. Mark
    statistics are collected per response and written with the interval's end.
    """

    def __init__(self) -> None:
        self.audio_sent_bytes = 0
        self._audible: dict[str, int] = {}  # response_id -> bytes sent this interval
        self._marks: dict[str, tuple[list[int], list[int]]] = {}

    @property
    def open(self) -> bool:
        return bool(self._audible)

    def frames_sent(self, out: Sequence[Outbound], now: float, playout_status: str) -> list[Record]:
        """Frames left for Twilio; the record of each response's first frame."""
        started: list[Record] = []
        for frame in out:
            if not isinstance(frame, AudioFrame):
                continue
            self.audio_sent_bytes += len(frame.payload)
            sent = self._audible.get(frame.response_id)
            self._audible[frame.response_id] = (sent or 0) + len(frame.payload)
            if sent is None:
                started.append(
                    Record(
                        RecordKind.PLAYOUT_STARTED,
                        now,
                        playout_status,
                        {"response_id": frame.response_id, "item_id": frame.item_id},
                    )
                )
        return started

    def note_echo(self, echo: MarkEcho) -> None:
        if echo.accepted and echo.response_id:
            errors, trips = self._marks.setdefault(echo.response_id, ([], []))
            errors.append(echo.estimate_error_ms)
            trips.append(echo.round_trip_ms)

    def close(
        self, now: float, playout_status: str, end_offset_ms: int, interrupted: bool
    ) -> list[Record]:
        """Every open interval ends at stream offset `end_offset_ms`; mark statistics follow."""
        records = [
            Record(
                RecordKind.PLAYOUT_ENDED,
                now,
                playout_status,
                {
                    "response_id": response_id,
                    "audio_end_offset_ms": end_offset_ms,
                    "audio_ms": sent // BYTES_PER_MS,
                    "interrupted": interrupted,
                },
            )
            for response_id, sent in self._audible.items()
        ]
        self._audible.clear()
        return records + self.flush_marks(now)

    def flush_marks(self, now: float) -> list[Record]:
        records = [
            Record(
                RecordKind.MARK_STATS,
                now,
                details={
                    "response_id": response_id,
                    "count": len(errors),
                    "estimate_error_ms": errors,
                    "round_trip_ms": trips,
                },
            )
            for response_id, (errors, trips) in self._marks.items()
        ]
        self._marks.clear()
        return records
