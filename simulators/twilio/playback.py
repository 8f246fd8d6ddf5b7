"""Sans-IO phone playback: a buffer drained at 8 bytes per ms, marks, clear, underruns."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from simulators import signals
from simulators.twilio.timeline import (
    ClearRecord,
    HeardSegment,
    MarkRecord,
    Timeline,
    Underrun,
)

# A mark is due when playback reaches it; allow for float rounding in deadlines only.
_EPSILON_S = 1e-6


@dataclass
class _Scheduled:
    start: float
    end: float
    tone: int


class Playback:
    """Plays received media like a phone; all times are monotonic seconds passed in."""

    def __init__(self, timeline: Timeline, *, underrun_threshold_ms: float = 1.0) -> None:
        self.timeline = timeline
        self._threshold_ms = underrun_threshold_ms
        self._queue: deque[_Scheduled] = deque()
        self._pending_marks: deque[MarkRecord] = deque()
        self.play_end = 0.0
        """When the audio buffered so far finishes playing."""
        self.queued_ms = 0.0
        """All audio ever queued, in ms (mark positions count in it)."""
        self._last_tone = signals.SILENCE
        # The current run of audio: its first frame's time on the link; whether a mark
        # has followed it yet.
        self._run_late_s = 0.0
        self._run_marked = True

    def buffered_ms(self, now: float) -> float:
        return max(0.0, self.play_end - now) * 1000.0

    def enqueue(self, payload: bytes, now: float, late_s: float = 0.0) -> None:
        """Queue a media payload; it starts when the previous audio ends, or now if idle.

        Marks that came due stay pending: only `advance` hands them out, so the
        caller echoes every one of them. `late_s` is how long the payload
        spent on the link.
        """
        self._play(now)
        if not payload:
            return
        frame_bytes = signals.FRAME_BYTES
        pieces = [payload[i : i + frame_bytes] for i in range(0, len(payload), frame_bytes)]
        tones = [signals.detect_tone(piece) for piece in pieces]
        start = self.play_end
        if start < now:
            gap_ms = (now - start) * 1000.0
            if tones[0] >= 1 and tones[0] == self._last_tone and gap_ms >= self._threshold_ms:
                self.timeline.underruns.append(Underrun(now, gap_ms, tones[0]))
            start = now
            self._run_late_s, self._run_marked = late_s, False
        for piece, tone in zip(pieces, tones, strict=True):
            end = start + len(piece) / (signals.BYTES_PER_MS * 1000.0)
            self._queue.append(_Scheduled(start, end, tone))
            start = end
        self.play_end = start
        self.queued_ms += len(payload) / signals.BYTES_PER_MS
        self._last_tone = tones[-1]

    def add_mark(self, name: str, now: float) -> MarkRecord:
        """Register a mark; it is due when all audio queued before it has played."""
        self._play(now)
        record = MarkRecord(name, now, self.queued_ms, max(now, self.play_end))
        if not self._run_marked:
            record.run_late_s, self._run_marked = self._run_late_s, True
        self.timeline.marks.append(record)
        self._pending_marks.append(record)
        return record

    def advance(self, now: float) -> list[MarkRecord]:
        """Move time to `now`: record what played; return marks now due (to be echoed)."""
        self._play(now)
        due: list[MarkRecord] = []
        while self._pending_marks and self._pending_marks[0].due_at <= now + _EPSILON_S:
            due.append(self._pending_marks.popleft())
        return due

    def _play(self, now: float) -> None:
        """Record what has played by `now`."""
        timeline = self.timeline
        queue = self._queue
        while queue and queue[0].start <= now:
            head = queue[0]
            if head.tone >= 1 and head.tone not in timeline.tone_started_at:
                timeline.tone_started_at[head.tone] = head.start
            if head.end > now:
                break
            queue.popleft()
            timeline.add_heard(HeardSegment(head.start, head.end, head.tone))

    def next_mark_due(self) -> float | None:
        return self._pending_marks[0].due_at if self._pending_marks else None

    def clear(self, now: float) -> list[MarkRecord]:
        """Drop unplayed audio and return every pending mark at once (marked `cleared`)."""
        due = self.advance(now)
        dropped_ms = self.buffered_ms(now)
        if self._queue and self._queue[0].start < now:
            head = self._queue[0]
            self.timeline.add_heard(HeardSegment(head.start, now, head.tone))
        self._queue.clear()
        self.play_end = min(self.play_end, now)
        self._last_tone = signals.SILENCE
        returned = list(self._pending_marks)
        self._pending_marks.clear()
        for record in returned:
            record.cleared = True
        self.timeline.clears.append(
            ClearRecord(now, dropped_ms, tuple(r.name for r in due + returned))
        )
        return due + returned
