"""The playout deadline: when the audio sent, and the audio queued behind it, will have played."""

from __future__ import annotations

from playout.config import BYTES_PER_SECOND


class PlayoutDeadline:
    """Send-time and echo-based estimate of the end of playout, in monotonic seconds.

    `sent_end` (when everything sent so far finishes) is what pacing uses:
    a frame sent at `now` starts when the previous one ends, or at `now` if
    the buffer had run dry. A mark echo at `t` for axis position `P` says the
    rest plays from `t`. Pacing follows the latest echo either way: one echo
    delayed by the network must not hold pacing back for the rest of an
    answer (that leaves a gap in the caller's ear), and the next timely echo
    pulls it back. `deadline` takes the furthest end ever seen, so it only
    moves forward until `reset` (a cancel), `cut` (a pause) or `hold`.

    `deadline` also covers audio held locally, but only while audio is
    playing and pacing is not held: pacing sends it on back-to-back, so it
    extends the playout.
    """

    def __init__(self) -> None:
        # The audio after axis position `_run_pos` plays back-to-back from
        # `_run_at`; an anchor, not a running sum, so float error cannot pile up.
        self._run_at: float | None = None
        self._run_pos = 0
        # The anchor is a run's start (a send into a dry player), not an echo.
        self._run_started = False
        self.deadline: float | None = None

    def sent_end(self, sent_pos: int) -> float | None:
        """When the audio sent up to axis `sent_pos` finishes (None: nothing sent since reset)."""
        if self._run_at is None:
            return None
        return self._run_at + (sent_pos - self._run_pos) / BYTES_PER_SECOND

    def frame_start(self, now: float, sent_pos: int) -> float:
        """When a frame sent at `now` would start playing."""
        end = self.sent_end(sent_pos)
        return now if end is None or end < now else end

    def on_send(self, now: float, sent_pos: int) -> None:
        """A frame is about to be appended at axis `sent_pos` at `now`."""
        end = self.sent_end(sent_pos)
        if end is None or end < now:  # dry: this frame starts playing now
            self._run_at, self._run_pos = now, sent_pos
            self._run_started = True

    def on_echo(self, now: float, mark_pos: int) -> None:
        """Evidence: audio up to `mark_pos` finished by `now`; the rest plays from `now`.

        Unless a run began after `now` that, by the echo, found the player dry:
        that run started when it was sent, as the anchor already says.
        """
        run_at = self._run_at
        if run_at is None:
            return
        if (
            self._run_started
            and now < run_at
            and mark_pos + (run_at - now) * BYTES_PER_SECOND >= self._run_pos
        ):
            return
        self._run_at, self._run_pos = now, mark_pos
        self._run_started = False

    def extend(self, now: float, sent_pos: int, pending_bytes: int) -> None:
        """Move the deadline forward to cover what was sent and, while playing, what is held."""
        end = self.sent_end(sent_pos)
        if end is None:
            return
        if now < end:
            end += pending_bytes / BYTES_PER_SECOND
        if self.deadline is None or end > self.deadline:
            self.deadline = end

    def hold(self, sent_pos: int) -> None:
        """A hold: the audio held locally will not follow; only what was sent plays on."""
        end = self.sent_end(sent_pos)
        if end is not None and self.deadline is not None and end < self.deadline:
            self.deadline = end

    def cut(self, now: float, sent_pos: int) -> None:
        """A pause's clear at `now`: playback stopped then (or when it ran dry, if earlier).

        Nothing sent is left to play: the next frame starts a run.
        """
        end = self.sent_end(sent_pos)
        if end is not None:
            self.deadline = min(end, now)
        self._run_at = None

    def reset(self) -> None:
        """A cancel: nothing is playing any more."""
        self._run_at = None
        self.deadline = None
