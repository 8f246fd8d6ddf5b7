"""When each answer was heard (playout intervals), and how good the estimate was (mark echoes)."""

from __future__ import annotations

from collections.abc import Sequence

from callcore.outputs import Record
from callcore.records import RecordKind
from playout import BYTES_PER_MS, AudioFrame, MarkEcho, Outbound


class PlayoutIntervals:
    """Turns frames sent and echoes judged into `playout_started`/`_ended` and `mark_stats` rows.

    A response's interval starts with its first frame sent and ends when the
    caller stops hearing it: the end of playout, or a barge-in. Its end says
    how much audio of each of its items was sent, in the order they played
    (an answer can hold several). Mark statistics are collected per response
    and written with the interval's end.
    """

    def __init__(self) -> None:
        self.audio_sent_bytes = 0
        self._audible: dict[str, int] = {}  # response_id -> bytes sent this interval
        # response_id -> {item_id: bytes sent this interval}, items in the order they played
        self._items: dict[str, dict[str, int]] = {}
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
            size = len(frame.payload)
            self.audio_sent_bytes += size
            sent = self._audible.get(frame.response_id)
            self._audible[frame.response_id] = (sent or 0) + size
            items = self._items.setdefault(frame.response_id, {})
            items[frame.item_id] = items.get(frame.item_id, 0) + size
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
                    "items": [
                        [item_id, size // BYTES_PER_MS]
                        for item_id, size in self._items.get(response_id, {}).items()
                    ],
                },
            )
            for response_id, sent in self._audible.items()
        ]
        self._audible.clear()
        self._items.clear()
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
