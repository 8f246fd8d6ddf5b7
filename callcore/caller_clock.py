"""Twilio's media clock, read on ours: when the caller's messages reached us, had we been on time.

Every inbound media frame carries `timestamp`: milliseconds of the stream on
Twilio's clock, a frame about every 20 ms while the call is up. A server
that runs late (its event loop busy with other calls) reads a frame, and the
mark echo queued behind it, later than they arrived; dated by when they were
read, the echo would say the caller heard less than they had, and the first
echo of a run would take the lateness for the link's round trip. The frames
say how late: `now - timestamp` is least for the frames read as they came
(the link's own delay, the offset), and a frame read later than that was read
late by the difference. Twilio's clock is not moved by ours being late.

A message read after frame k and before frame k + 1 was sent by Twilio
between them: had we been on time it reached us within a frame's length of
frame k's on-time arrival. `dated(now)` gives that, or `now` when that is no
later (the message may well have come when we read it).

Sans-IO: every input takes `now` (monotonic seconds) and the frame's fields.
Timestamps that do not advance like a clock (none, constant, backwards, a
jump ahead of ours) restart the offset from the frame at hand, taken as on
time: with no usable timestamps it dates everything when it is read, as a
plain server clock would. A gap in the frames (none sent for a while) keeps
the offset.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

# How far back the least offset is looked for: long enough to hold some frames
# read on time even under a busy loop, short enough to follow the two clocks'
# drift (tens of ppm: under a ms over the window).
_WINDOW_S = 10.0
# A message read after a gap in the frames is dated back no more than frames were
# late over this long (the uplink's jitter, a busy loop's lateness).
_RECENT_S = 1.0
# The window keeps the least offset of each bucket of this long (a few dozen entries).
_BUCKET_S = 0.25
# A frame later than this is taken as a clock fault, not lateness: the offset
# restarts (the admission limit keeps a server far from this late).
_MAX_LATENESS_S = 5.0
# A timestamp step under half a frame (constant, backwards) is no clock; one over
# three frames is a gap in the frames, or Twilio's clock jumping ahead (a fault
# when it puts the frame before our clock's time).
_MIN_STEP = 0.5
_MAX_STEP = 3.0
# Frames in a row on one clock before it dates messages better than reading them
# does: the least offset of fewer could still carry the uplink's jitter.
_DATING_FRAMES = 10
# A change of the offset smaller than this is not worth re-dating anything.
_CHANGE_S = 0.001
# A timestamp beyond this (about 115 days of stream) is not one.
_MAX_TIMESTAMP_MS = 10**10
# Lateness histogram edges (ms): the per-call record's percentiles are read off it.
_EDGES_MS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500)


@dataclass(frozen=True, slots=True)
class Lateness:
    """How late the call's frames were read (ms): p50, p95 (by histogram bucket), max."""

    frames: int
    p50_ms: int
    p95_ms: int
    max_ms: int
    over_20ms: int

    def as_details(self) -> dict[str, int]:
        return {
            "late_p50_ms": self.p50_ms,
            "late_p95_ms": self.p95_ms,
            "late_max_ms": self.max_ms,
            "late_frames_over_20ms": self.over_20ms,
        }


class CallerClock:
    """The on-time arrival of the caller's frames and of what comes between them."""

    def __init__(self) -> None:
        # Per bucket of `_BUCKET_S`, the least offset seen: (bucket's start, offset),
        # offsets increasing, so the front is the least in the window.
        self._offsets: deque[tuple[float, float]] = deque()
        self._bucket: tuple[float, float] | None = None
        self._offset: float | None = None
        self._offset_change = 0.0
        self._last_ts_ms: int | None = None
        self._last_on_time: float | None = None
        # (read at, lateness) of the last `_RECENT_S` of frames, lateness decreasing.
        self._late: deque[tuple[float, float]] = deque()
        self._last_frame_s = 0.02
        self._histogram = [0] * (len(_EDGES_MS) + 1)
        self._frames = 0
        self._max_s = 0.0
        # Frames read on the current offset since the last restart.
        self._on_clock = 0

    def frame(self, timestamp_ms: int, duration_s: float, now: float) -> float:
        """A media frame of `duration_s` read at `now`: when it reached us, had we been on time."""
        self._last_frame_s = duration_s
        last = self._last_ts_ms
        valid = 0 <= timestamp_ms < _MAX_TIMESTAMP_MS
        self._last_ts_ms = timestamp_ms if valid else None
        if not valid:
            return self._restart(now, None)  # not a stream's milliseconds
        offset = now - timestamp_ms / 1000
        if last is None:
            return self._restart(now, offset)
        step_s = (timestamp_ms - last) / 1000
        if step_s < _MIN_STEP * duration_s - 0.001:
            return self._restart(now, offset)  # constant or backwards: no clock
        least = self._least(now, offset)
        lateness = offset - least
        if lateness > _MAX_LATENESS_S or (
            offset < least and step_s > _MAX_STEP * duration_s + 0.001
        ):
            # Later than any server is, or a jump ahead that puts this frame before
            # the clock's time: Twilio's clock moved, not ours.
            return self._restart(now, offset)
        if self._offset is not None:
            self._offset_change += least - self._offset
        self._offset = least
        self._on_clock += 1
        self._count(lateness)
        self._note_lateness(now, lateness)
        self._last_on_time = on_time = now - lateness
        return on_time

    def offset_change(self) -> float:
        """How much earlier (< 0) or later the clock now puts what it dated before: it has
        learned that frames it took for on time were late (or the clocks drifted).
        Reported once it adds up to a millisecond, then from zero again."""
        change = self._offset_change
        if abs(change) < _CHANGE_S:
            return 0.0
        self._offset_change = 0.0
        return change

    def dated(self, now: float) -> float:
        """When a message read at `now`, after the last frame, reached us at the latest
        had we been on time: within a frame of that frame's on-time arrival (its middle
        when we are later than that), or `now` if earlier; never back by more than the
        frames of the last second were late."""
        last = self._last_on_time
        if last is None or now <= last + self._last_frame_s:
            return now
        # Never earlier than frames were late lately: after a gap in the caller's frames
        # (none sent for a while) the message may have come at any time since.
        return max(last + self._last_frame_s / 2, now - self.recent_lateness_s)

    def _note_lateness(self, now: float, lateness: float) -> None:
        late = self._late
        while late and late[-1][1] <= lateness:
            late.pop()
        late.append((now, lateness))
        while late[0][0] < now - _RECENT_S:
            late.popleft()

    @property
    def recent_lateness_s(self) -> float:
        """The most a frame was read late over the last `_RECENT_S`, by Twilio's clock (0:
        none late, or no clock to tell): how late this server's loop runs lately, and
        the uplink's own spread on top (late against its quickest way)."""
        return self._late[0][1] if self._late else 0.0

    def _least(self, now: float, offset: float) -> float:
        """The least offset over the window, this frame's included."""
        offsets, bucket = self._offsets, self._bucket
        if bucket is not None and now - bucket[0] >= _BUCKET_S:
            while offsets and offsets[-1][1] >= bucket[1]:
                offsets.pop()
            offsets.append(bucket)
            bucket = None
        if bucket is None:
            bucket = (now, offset)
        elif offset < bucket[1]:
            bucket = (bucket[0], offset)
        self._bucket = bucket
        while offsets and offsets[0][0] < now - _WINDOW_S:
            offsets.popleft()
        return min(bucket[1], offsets[0][1]) if offsets else bucket[1]

    def _restart(self, now: float, offset: float | None) -> float:
        """No lateness to read (yet): the frame is taken as on time, the window starts
        over, and what the clock learns from here moves nothing dated before."""
        self._offsets.clear()
        self._bucket = None if offset is None else (now, offset)
        self._offset = None
        self._offset_change = 0.0
        self._count(0.0)
        self._late.clear()
        self._last_on_time = now
        self._on_clock = 0
        return now

    @property
    def dating(self) -> bool:
        """Whether `dated` dates by Twilio's clock (within a frame of when a message
        came), not by when it was read: the offset held over enough frames."""
        return self._on_clock >= _DATING_FRAMES

    def lateness(self) -> Lateness:
        """The call's frames so far, by how late they were read."""
        counts, frames = self._histogram, self._frames
        return Lateness(
            frames=frames,
            p50_ms=self._quantile_ms(0.5),
            p95_ms=self._quantile_ms(0.95),
            max_ms=round(self._max_s * 1000),
            over_20ms=sum(counts[_EDGES_MS.index(20) + 1 :]),
        )

    def _count(self, lateness_s: float) -> None:
        self._histogram[bisect_left(_EDGES_MS, lateness_s * 1000)] += 1
        self._frames += 1
        self._max_s = max(self._max_s, lateness_s)

    def _quantile_ms(self, q: float) -> int:
        """The upper edge of the bucket holding quantile `q` (the max for the last bucket)."""
        if not self._frames:
            return 0
        rank = q * self._frames
        seen = 0
        for bucket, count in enumerate(self._histogram):
            seen += count
            if seen >= rank and count:
                if bucket < len(_EDGES_MS):
                    return min(_EDGES_MS[bucket], round(self._max_s * 1000))
                break
        return round(self._max_s * 1000)
