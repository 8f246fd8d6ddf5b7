"""Sans-IO phone playback: a buffer drained at 8 bytes per ms, marks, clear, underruns."""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass

from simulators import mulaw, position, signals
from simulators.twilio.timeline import (
    ClearRecord,
    HeardSegment,
    MarkRecord,
    Timeline,
    Underrun,
)

# A mark is due when playback reaches it; allow for float rounding in deadlines only.
_EPSILON_S = 1e-6
# Which sample plays at a time: float rounding must not move it by one.
_EPSILON_SAMPLES = 1e-3


@dataclass(frozen=True)
class _Scheduled:
    start: float
    end: float
    tone: int
    audio: bytes
    position: int | None
    """Offset of its first sample in its audio item (`simulators.position`)."""


class Playback:
    """Plays received media like a phone; all times are monotonic seconds passed in.

    The audio that played in the last `history_ms` is kept, sample for sample
    (`played`): what a speakerphone's microphone hears again.
    """

    def __init__(
        self,
        timeline: Timeline,
        *,
        underrun_threshold_ms: float = 1.0,
        history_ms: float = 1000.0,
    ) -> None:
        self.timeline = timeline
        self._threshold_ms = underrun_threshold_ms
        self._history_s = history_ms / 1000.0
        self._queue: deque[_Scheduled] = deque()
        self._history: deque[_Scheduled] = deque()  # played, oldest first
        self._now = -math.inf  # the latest time playback was moved to
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
            where = position.read(piece) if tone >= 1 else None
            self._queue.append(_Scheduled(start, end, tone, piece, where))
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
        self._now = max(self._now, now)
        while queue and queue[0].start <= now:
            head = queue[0]
            if head.tone >= 1 and head.tone not in timeline.tone_started_at:
                timeline.tone_started_at[head.tone] = head.start
            if head.end > now:
                break
            queue.popleft()
            self._played(head)
        history = self._history
        while history and history[0].end < now - self._history_s:
            history.popleft()

    def _played(self, piece: _Scheduled) -> None:
        self.timeline.add_heard(HeardSegment(piece.start, piece.end, piece.tone, piece.position))
        self._history.append(piece)

    def played(self, start: float, n_samples: int) -> bytes:
        """The `n_samples` mu-law samples that played from monotonic time `start` on.

        Silence where nothing played (a gap, before the first audio, after a
        `clear`, or later than playback was last moved to), and where it is older
        than `history_ms`. The sample playing at time t is the one whose 1/8000 s
        began at or before t.
        """
        out = bytearray(mulaw.silence(n_samples))
        if start >= self._now:
            return bytes(out)
        rate = signals.SAMPLE_RATE_HZ
        known = min(n_samples, math.floor((self._now - start) * rate + _EPSILON_SAMPLES))
        end = start + n_samples / rate
        for piece in itertools.chain(self._history, self._queue):
            if piece.start >= end:
                break
            shift = math.floor((start - piece.start) * rate + _EPSILON_SAMPLES)
            low, high = max(0, -shift), min(known, len(piece.audio) - shift)
            if low < high:
                out[low:high] = piece.audio[low + shift : high + shift]
        return bytes(out)

    def next_mark_due(self) -> float | None:
        return self._pending_marks[0].due_at if self._pending_marks else None

    def clear(self, now: float) -> list[MarkRecord]:
        """Drop unplayed audio and return every pending mark at once (marked `cleared`)."""
        due = self.advance(now)
        dropped_ms = self.buffered_ms(now)
        if self._queue and self._queue[0].start < now:
            head = self._queue[0]
            heard = math.floor((now - head.start) * signals.SAMPLE_RATE_HZ + _EPSILON_SAMPLES)
            self._played(_Scheduled(head.start, now, head.tone, head.audio[:heard], head.position))
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
