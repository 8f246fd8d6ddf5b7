"""A reference real-time player (Twilio's buffer as the tests model it) and a driving shell."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from playout import (
    AudioFrame,
    CancelOutcome,
    MarkEcho,
    PauseOutcome,
    PlayoutConfig,
    PlayoutTracker,
)

BYTES_PER_S = 8000
EPS = 1e-6


@dataclass
class Played:
    """One frame's playback: from `start` to `end` (seconds), cut short by a clear."""

    start: float
    end: float
    item_id: str
    payload: bytes = b""

    @property
    def heard(self) -> bytes:
        """The bytes of the frame that played (all, unless a clear cut it)."""
        return self.payload[: round((self.end - self.start) * BYTES_PER_S)]


class ReferencePlayer:
    """A FIFO played at 8 bytes/ms; marks echo when reached; `clear` returns them all at once.

    `delay_s` is the network from us to the player: audio (and a clear) reach
    it that much after they were sent. `echo_delay_s` is the way back: a
    mark's echo reaches us that much after the player reached the mark.
    `lead_s`: a run starts that much after its first frame arrives (a jitter
    buffer, a phone that starts late); a clear acts as it arrives.
    """

    def __init__(
        self, delay_s: float = 0.0, echo_delay_s: float = 0.0, lead_s: float = 0.0
    ) -> None:
        self.delay_s = delay_s
        self.echo_delay_s = echo_delay_s
        self.lead_s = lead_s
        self.play_end = float("-inf")
        # The current run of back-to-back audio: its start and bytes so far (no float drift).
        self._run_start = float("-inf")
        self._run_bytes = 0
        self.played: list[Played] = []
        self.marks: list[tuple[float, str]] = []
        self.payload = bytearray()

    def receive_frame(self, now: float, frame: AudioFrame) -> None:
        if now + self.delay_s >= self.play_end:
            self._run_start, self._run_bytes = now + self.delay_s + self.lead_s, 0
        start = self._run_start + self._run_bytes / BYTES_PER_S
        self._run_bytes += len(frame.payload)
        self.play_end = self._run_start + self._run_bytes / BYTES_PER_S
        self.played.append(Played(start, self.play_end, frame.item_id, frame.payload))
        self.payload += frame.payload

    def receive_mark(self, now: float, name: str) -> None:
        self.marks.append((max(self.play_end, now + self.delay_s), name))

    def next_echo_at(self) -> float | None:
        return self.marks[0][0] + self.echo_delay_s if self.marks else None

    def due_echoes(self, now: float) -> list[str]:
        due = [name for at, name in self.marks if at + self.echo_delay_s <= now]
        self.marks = self.marks[len(due) :]
        return due

    def clear(self, now: float) -> list[str]:
        """The clear arrives at `now`: the marks not reached yet come back (the names);
        those reached before it echo by themselves, as they were going to."""
        names = [name for at, name in self.marks if at > now]
        self.marks = [(at, name) for at, name in self.marks if at <= now]
        for played in self.played:
            played.end = min(played.end, max(played.start, now))
        self.play_end = min(self.play_end, now)
        self._run_start, self._run_bytes = float("-inf"), 0
        return names

    def heard_ms(self, item_id: str, now: float) -> float:
        total = 0.0
        for played in self.played:
            if played.item_id == item_id and now > played.start:
                total += min(now, played.end) - played.start
        return total * 1000

    def buffered_s(self, now: float) -> float:
        return max(0.0, self.play_end - now)

    def heard_payload(self, item_id: str | None = None) -> bytes:
        """Every byte that played, in order (of one item, if given)."""
        return b"".join(p.heard for p in self.played if item_id in (None, p.item_id))

    def audio(self, start: float, end: float) -> bytes:
        """What played at each sample time over [start, end) (0xFF where nothing did),
        sample by sample: the slow, obvious truth `heard_audio` is checked against."""
        # What played never overlaps: in time order (frames a clear emptied left out).
        played = [p for p in self.played if p.end > p.start]
        starts = [p.start for p in played]
        out = bytearray()
        for k in range(round((end - start) * BYTES_PER_S)):
            t = start + k / BYTES_PER_S
            i = bisect.bisect_right(starts, t + 1e-9) - 1
            frame = played[i] if i >= 0 else None
            if frame is not None and t + 1e-9 < frame.end:
                out.append(frame.payload[math.floor((t - frame.start) * BYTES_PER_S + 1e-6)])
            else:
                out.append(0xFF)
        return bytes(out)


class Shell:
    """Drives a tracker like the asyncio shell would: wakes at `next_deadline()`, sends at once.

    Echoes are delivered at the exact time the player reaches each mark.
    Records every violation of pacing (lead above lead_ms, a gap while a
    frame was sendable) and of deadline monotonicity.
    """

    def __init__(
        self,
        config: PlayoutConfig | None = None,
        delay_s: float = 0.0,
        echo_delay_s: float = 0.0,
        lead_s: float = 0.0,
        clear_delay_s: float | None = None,
        dated_echoes: bool = False,
    ) -> None:
        self.config = config or PlayoutConfig()
        # A clear's own way down (Twilio's player acts on it as it arrives): the audio's
        # unless given.
        self.clear_delay_s = delay_s if clear_delay_s is None else clear_delay_s
        # Echoes dated as by Twilio's clock (`arrived` given: here, exactly when they came).
        self.dated_echoes = dated_echoes
        self.tracker = PlayoutTracker(self.config)
        self.player = ReferencePlayer(delay_s, echo_delay_s, lead_s)
        self.now = 0.0
        self.frames: list[AudioFrame] = []
        self.sent_at: list[float] = []
        self.echoes: list[MarkEcho] = []
        self.max_lead_s = 0.0
        self.gaps: list[float] = []
        self.deadline_regressions: list[tuple[float, float]] = []
        self.sent_while_held: list[float] = []
        self.hold_until = float("-inf")
        self._sendable = False
        self._last_deadline: float | None = None

    def advance(self, t: float) -> None:
        """Move the clock to `t`, checking that playback did not run dry while a frame waited."""
        assert t >= self.now
        if self._sendable and self.player.play_end + EPS < t:
            self.gaps.append(self.player.play_end)
        self.now = t

    def poll(self) -> None:
        for name in self.player.due_echoes(self.now):
            arrived = self.now if self.dated_echoes else None
            self.echoes.append(self.tracker.mark_echoed(name, self.now, arrived))
        held = self.tracker.held
        for out in self.tracker.poll(self.now):
            assert self.tracker.is_live(out.generation)
            assert self.tracker.is_current(out.epoch)
            if isinstance(out, AudioFrame):
                self.frames.append(out)
                self.sent_at.append(self.now)
                self.player.receive_frame(self.now, out)
                # On the tracker's clock (our sends'), when the player will have played it.
                ends = self.player.play_end - self.player.delay_s - self.player.lead_s
                if held and ends > self.hold_until + EPS:
                    self.sent_while_held.append(self.now)  # it plays after the hold's `until`
            else:
                self.player.receive_mark(self.now, out.name)
        lead = self.player.buffered_s(self.now) - self.player.delay_s
        self.max_lead_s = max(self.max_lead_s, lead)
        self._sendable = self.tracker.next_send_at() is not None
        self.check_deadline()

    def check_deadline(self) -> None:
        deadline = self.tracker.snapshot(self.now).deadline
        last = self._last_deadline
        if last is not None and (deadline is None or deadline < last - EPS):
            self.deadline_regressions.append((last, -1.0 if deadline is None else deadline))
        self._last_deadline = deadline

    def run_until(self, t: float) -> None:
        """Advance to `t`, waking at every tracker deadline and echo on the way."""
        self.poll()
        while True:
            candidates = [self.tracker.next_deadline(), self.player.next_echo_at()]
            due = [c for c in candidates if c is not None]
            wake = min(due) if due else None
            if wake is None or wake > t:
                break
            self.advance(max(wake, self.now))
            self.poll()
            if wake <= self.now and self.tracker.next_deadline() == self.now:
                raise AssertionError(f"tracker asks to be woken at {self.now} again")
        self.advance(t)
        self.poll()

    def cancel(self) -> CancelOutcome:
        outcome = self.tracker.cancel(self.now)
        self._cleared()
        return outcome

    def _cleared(self) -> None:
        """Twilio's clear, sent now: it reaches the player one way later, and the marks it
        returns come back the other way (the clear's own round trip)."""
        self._last_deadline = None
        reached = self.now + self.clear_delay_s
        returned = [(reached, name) for name in self.player.clear(reached)]
        self.player.marks += returned
        self._sendable = False
        self.poll()

    def hold(self, until: float | None = None) -> None:
        self.tracker.hold(self.now, until)
        self.hold_until = float("-inf") if until is None else until
        self._last_deadline = None  # a hold takes the audio held here off the deadline
        self._sendable = False
        self.poll()

    def pause(self) -> PauseOutcome:
        outcome = self.tracker.pause(self.now)
        if outcome.closing_mark is not None:
            self.player.receive_mark(self.now, outcome.closing_mark.name)
        self._cleared()
        return outcome

    def resume(self) -> None:
        self.tracker.resume(self.now)
        self.poll()
