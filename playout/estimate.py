"""The heard-position estimate: how far along the sent-audio axis the caller has heard."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from playout.config import BYTES_PER_SECOND

# Anchors kept for questions about the recent past (at least a few seconds
# even at the densest: one per mark echo plus one per restart after a dry buffer).
_ANCHOR_HISTORY = 2048
# Float time arithmetic lands a hair under whole bytes (15999.999...): count those as reached.
_BYTE_SLACK = 1e-6


@dataclass(slots=True)
class _Anchor:
    """From time `t` on: position = clamp(p + (now - t) * rate, floor, cap)."""

    t: float
    p: float
    floor: float
    cap: float

    def at(self, now: float) -> float:
        line = self.p + (now - self.t) * BYTES_PER_SECOND
        return max(self.floor, min(line, self.cap))


class HeardEstimate:
    """A piecewise-linear, non-decreasing position-over-time estimate.

    A real-time player plays at 8 bytes/ms while it has audio. Sending while
    the player is dry restarts playback at the send time; a mark echo at `t`
    for axis position `P` re-anchors the line at (t, P), which can move the
    estimate ahead or behind. Going behind never makes the reported position
    decrease: it holds (the floor) until the corrected line catches up. The
    position never exceeds what was sent.
    """

    def __init__(self, now: float, pos: int) -> None:
        self._anchors: deque[_Anchor] = deque(maxlen=_ANCHOR_HISTORY)
        self.reset(now, pos)

    def reset(self, now: float, pos: int) -> None:
        """Start over at `now`: everything up to `pos` is accounted for (played or dropped)."""
        self._anchors.clear()
        self._anchors.append(_Anchor(now, pos, pos, pos))

    @property
    def start(self) -> float:
        """The earliest time with retained evidence; earlier times clamp to it."""
        return self._anchors[0].t

    def position(self, now: float) -> int:
        """Axis bytes heard by `now` (may be in the past, back to `start`)."""
        for anchor in reversed(self._anchors):
            if anchor.t <= now:
                return int(anchor.at(now) + _BYTE_SLACK)
        first = self._anchors[0]
        return int(first.floor + _BYTE_SLACK)

    def playing(self, now: float) -> bool:
        """Whether audio sent is still (estimated) unplayed at `now`."""
        last = self._anchors[-1]
        return last.p + (now - last.t) * BYTES_PER_SECOND < last.cap

    def on_send(self, now: float, size: int) -> None:
        """`size` bytes were appended to the axis at `now` (`now` >= the last event)."""
        last = self._anchors[-1]
        if self.playing(now):
            last.cap += size
            return
        # Dry: playback of the new audio starts now.
        sent = last.cap
        if last.t >= now:
            self._anchors.pop()
        self._anchors.append(_Anchor(now, sent, sent, sent + size))

    def on_echo(self, now: float, pos: int) -> None:
        """Evidence: audio up to axis `pos` finished playing at `now`.

        An echo can describe a moment before the last anchor (it is dated back
        by the link's round trip): it is carried forward to that anchor's time.
        """
        last = self._anchors[-1]
        if now < last.t:
            pos = int(pos + (last.t - now) * BYTES_PER_SECOND)
            now = last.t
        heard = last.at(now)
        pos_f = float(min(pos, last.cap))
        if last.t >= now:
            self._anchors.pop()
        self._anchors.append(_Anchor(now, pos_f, heard, last.cap))
