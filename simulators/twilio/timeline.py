"""What the simulated caller heard and did, with monotonic times, plus query helpers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from simulators import signals


@dataclass(frozen=True)
class HeardSegment:
    """A piece of audio (at most one 20 ms frame) that actually played, and its tone."""

    start: float
    end: float
    tone: int
    """Response tone (1..), `signals.SILENCE` or `signals.UNKNOWN`."""

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000.0


@dataclass
class MarkRecord:
    """A mark from the app: where it sat in the playback stream and when it came back."""

    name: str
    received_at: float
    position_ms: float
    """Audio queued before the mark, in ms of all media received in the call."""
    due_at: float
    echoed_at: float | None = None
    cleared: bool = False
    """Returned by a `clear` rather than reached by playback."""
    run_late_s: float | None = None
    """The first mark of a run of audio that began in an empty buffer: how long that
    run's first frame spent on the link to Twilio (None for every other mark)."""
    round_trip_s: float | None = None
    """For a run's first mark: that frame's time on the link plus its echo's on the
    way back, the round trip the app can measure from it."""


@dataclass(frozen=True)
class ClearRecord:
    at: float
    dropped_ms: float
    """Buffered audio that was never played."""
    marks_returned: tuple[str, ...]


@dataclass(frozen=True)
class KeyPress:
    """A DTMF digit the caller pressed, and when its `dtmf` message was sent."""

    at: float
    digit: str


@dataclass(frozen=True)
class Underrun:
    """Playback ran dry between two pieces of the same response tone."""

    at: float
    gap_ms: float
    tone: int


@dataclass
class Timeline:
    """The caller's record of one call."""

    heard: list[HeardSegment] = field(default_factory=list)
    heard_ms: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    tone_started_at: dict[int, float] = field(default_factory=dict)
    """When each tone first began playing."""
    marks: list[MarkRecord] = field(default_factory=list)
    clears: list[ClearRecord] = field(default_factory=list)
    underruns: list[Underrun] = field(default_factory=list)
    media_received: int = 0
    media_bytes_received: int = 0
    media_sent: int = 0
    speech_started_at: list[float] = field(default_factory=list)
    dtmf: list[KeyPress] = field(default_factory=list)
    """Keys pressed (`Dtmf` segments), in order."""
    webhook_sent_at: float | None = None
    """When the voice webhook was asked (the call's beginning, as far as we see it)."""
    webhook_answered_at: float | None = None
    """When its TwiML came back."""
    stream_started_at: float | None = None
    """When `start` was sent; media timestamps count from here."""
    protocol_errors: list[str] = field(default_factory=list)
    """Things real Twilio would reject (binary frames, unknown events, wrong streamSid)."""
    closed_at: float | None = None
    closed_by: str | None = None
    """"caller" (stop/drop/hangup) or "server"."""
    close_code: int | None = None
    # After the server closed the stream: the action URL's HTTP status, and what
    # its TwiML said to the caller.
    action_status: int | None = None
    said: list[str] = field(default_factory=list)
    # A `<Dial>` the action URL answered: the number or SIP address, and when that
    # answer arrived (the caller left the stream for it: the call was transferred).
    dialed: str | None = None
    dialed_at: float | None = None
    # When each handover to a new stream of the same call happened (`<Connect action>`).
    handovers: list[float] = field(default_factory=list)
    # For each handover: from the old stream closing to the new one started (s).
    handover_gaps_s: list[float] = field(default_factory=list)
    sent_stop: bool = False
    dropped: bool = False

    def add_heard(self, segment: HeardSegment) -> None:
        self.heard.append(segment)
        self.heard_ms[segment.tone] += segment.ms

    def heard_ms_by_tone(self, *, include_silence: bool = False) -> dict[int, float]:
        """Total ms played per tone (audible audio only unless `include_silence`)."""
        return {
            tone: ms
            for tone, ms in self.heard_ms.items()
            if include_silence or tone != signals.SILENCE
        }

    def heard_after(self, t: float) -> list[HeardSegment]:
        """Audible segments that played (at least partly) after monotonic time `t`."""
        return [s for s in self.heard if s.end > t and s.tone != signals.SILENCE]

    def heard_ms_after(self, t: float, tone: int | None = None) -> float:
        """Ms of audible audio (of `tone`, if given) played after time `t`."""
        return sum(
            (s.end - max(s.start, t)) * 1000.0
            for s in self.heard_after(t)
            if tone is None or s.tone == tone
        )

    def last_heard(self, tone: int) -> float | None:
        """When audio of `tone` last stopped playing."""
        ends = [s.end for s in self.heard if s.tone == tone]
        return max(ends) if ends else None

    def mark(self, name: str) -> MarkRecord | None:
        return next((m for m in self.marks if m.name == name), None)

    def echoed_marks(self) -> list[MarkRecord]:
        return [m for m in self.marks if m.echoed_at is not None]

    @property
    def last_echo_at(self) -> float | None:
        """When the last mark echo was sent (None: no mark was echoed)."""
        echoes = [m.echoed_at for m in self.marks if m.echoed_at is not None]
        return max(echoes) if echoes else None

    def round_trips_ms(self) -> list[float]:
        """The round trips the link gave the first mark of each run of audio (see MarkRecord)."""
        return [m.round_trip_s * 1000.0 for m in self.marks if m.round_trip_s is not None]
