"""The heard-position estimate: how far along the sent-audio axis the caller has heard."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from playout.config import BYTES_PER_SECOND

# Anchors kept for questions about the recent past (at least a few seconds
# even at the densest: one per mark echo plus one per restart after a dry buffer).
_ANCHOR_HISTORY = 2048
# Float time arithmetic lands a hair under whole bytes (15999.999...): count those as reached.
_BYTE_SLACK = 1e-6


@dataclass(slots=True)
class _Anchor:
    """From time `t` on: position = clamp(p + (now - t) * rate, floor, cap).

    `restart`: a send into a dry player began a run here, from `p` (all that
    had been sent before).
    """

    t: float
    p: float
    floor: float
    cap: float
    restart: bool = False

    def at(self, now: float) -> float:
        line = self.p + (now - self.t) * BYTES_PER_SECOND
        return max(self.floor, min(line, self.cap))


class Stretch(NamedTuple):
    """From `since` until `until` the player is at axis position `line + (t - since) x rate`
    while that is below `cap`, and dry from there."""

    since: float
    until: float
    line: float
    cap: int


class HeardEstimate:
    """A piecewise-linear, non-decreasing position-over-time estimate.

    A real-time player plays at 8 bytes/ms while it has audio. Sending while
    the player is dry restarts playback at the send time; a mark echo at `t`
    for axis position `P` re-anchors the line at (t, P), which can move the
    estimate ahead or behind. Going behind never makes the reported position
    decrease: it holds (the floor) until the corrected line catches up. The
    position never exceeds what was sent.

    Anchors are only ever added at the latest time: the past keeps what was
    believed then, which `lines` reads back (what was playing when).
    """

    def __init__(self, now: float, pos: int) -> None:
        self._anchors: deque[_Anchor] = deque(maxlen=_ANCHOR_HISTORY)
        self.reset(now, pos)

    def reset(self, now: float, pos: int) -> None:
        """Start over at `now`: everything up to `pos` is accounted for (played or dropped).

        `position` reads `pos` for any earlier time; `lines` still sees the past.
        """
        self._reset_at = now
        self._reset_pos = pos
        self.cut(now, pos)

    def cut(self, now: float, pos: int) -> None:
        """A clear at `now`: playback stopped at `pos`, and nothing beyond it is sent."""
        anchors = self._anchors
        if anchors and anchors[-1].t >= now:
            anchors.pop()  # it held from `now` on only
        anchors.append(_Anchor(now, pos, pos, pos))

    def position(self, now: float) -> int:
        """Axis bytes heard by `now` (may be in the past, back to the last reset)."""
        if now < self._reset_at:
            return self._reset_pos
        for anchor in reversed(self._anchors):
            if anchor.t <= now:
                return int(anchor.at(now) + _BYTE_SLACK)
        first = self._anchors[0]
        return int(first.floor + _BYTE_SLACK)

    def lines(self, start: float, end: float) -> list[Stretch]:
        """What was playing over [start, end), by the estimate of the time, in time order.

        Stretches follow the line, not the floored position: it is where the
        evidence puts the player (after an echo behind the estimate, a little
        audio is taken to play twice). Times before the oldest anchor kept
        are left out.
        """
        stretches: list[Stretch] = []
        until = end
        for anchor in reversed(self._anchors):
            if anchor.t < until:
                since = max(anchor.t, start)
                cap = int(anchor.cap)
                # A dry anchor may lie at -inf (nothing sent yet): no arithmetic on it.
                line = anchor.p + (since - anchor.t) * BYTES_PER_SECOND if anchor.p < cap else cap
                stretches.append(Stretch(since, until, line, cap))
                until = anchor.t
            if anchor.t <= start:
                break
        stretches.reverse()
        return stretches

    def play_on(self, since: float, pos: int) -> bool:
        """The cut at `since`, the last thing known, was early: the player went on from
        it to `pos`, and stopped there. False (nothing changed) if something came after."""
        last = self._anchors[-1]
        if last.t != since or last.p != last.cap or pos <= last.cap:
            return False
        last.cap = float(pos)
        return True

    def line(self, now: float) -> tuple[float, float]:
        """Where the latest evidence puts the player at `now` had it audio to play (the
        last line, neither held at its floor nor stopped at what was sent), and since
        when that line holds."""
        last = self._anchors[-1]
        return last.t, last.p + (now - last.t) * BYTES_PER_SECOND

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
        self._anchors.append(_Anchor(now, sent, sent, sent + size, restart=True))

    def on_echo(self, now: float, pos: int) -> None:
        """Evidence: audio up to axis `pos` finished playing at `now`.

        An echo can describe a moment before the last anchor (it is dated back
        by the link's round trip): it is carried forward to that anchor's time,
        through any run begun meanwhile that the player, by the echo, reached
        dry (it started that run when it was sent, not straight on).
        """
        last = self._anchors[-1]
        if now < last.t:
            line = float(pos)
            for anchor in self._after(now):
                if anchor.restart and line + (anchor.t - now) * BYTES_PER_SECOND >= anchor.p:
                    line, now = anchor.p, anchor.t
            pos = int(line + (last.t - now) * BYTES_PER_SECOND + _BYTE_SLACK)
            now = last.t
        heard = last.at(now)
        pos_f = float(min(pos, last.cap))
        if last.t >= now and not last.restart:  # a run's start stays, for later echoes
            self._anchors.pop()
        self._anchors.append(_Anchor(now, pos_f, heard, last.cap))

    def _after(self, t: float) -> list[_Anchor]:
        """The anchors later than `t`, in time order."""
        later: list[_Anchor] = []
        for anchor in reversed(self._anchors):
            if anchor.t <= t:
                break
            later.append(anchor)
        later.reverse()
        return later
