"""What the simulated caller heard and did, with monotonic times, plus query helpers."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from simulators import signals
from simulators.twilio.script import SoundKind

# How far a heard frame may start from where the one before it ended and still be
# "in order": re-framing and partial frames move it a little, never this much.
IN_ORDER_TOLERANCE_MS = 40


@dataclass(frozen=True)
class HeardSegment:
    """A piece of audio (at most one 20 ms frame) that actually played, and its tone."""

    start: float
    end: float
    tone: int
    """Response tone (1..), `signals.SILENCE` or `signals.UNKNOWN`."""
    position: int | None = None
    """For a response tone: the offset, in samples within its audio item, of the
    segment's first sample (`simulators.position`); negative by the padding when
    the frame opens with silence before the item's audio. None when unreadable."""

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
    """For a run's first mark: that frame's time on the link plus the way back, the
    round trip the app can measure from it. The way back is the uplink's least time
    so far, not the echo's own: the media timestamps (Twilio's clock) let the app
    date the echo by when it would have come on the uplink's quickest path."""


@dataclass(frozen=True)
class ClearRecord:
    at: float
    dropped_ms: float
    """Buffered audio that was never played."""
    marks_returned: tuple[str, ...]


@dataclass(frozen=True)
class KeyPress:
    """A DTMF digit the caller pressed, and when its `dtmf` message was sent (`at`); and
    when it was due on the stream's 20 ms schedule (`due`: the end of the frame it
    follows), which a late timer does not move."""

    at: float
    digit: str
    due: float


@dataclass(frozen=True)
class Underrun:
    """Playback ran dry between two pieces of the same response tone."""

    at: float
    gap_ms: float
    tone: int


@dataclass
class CallerSound:
    """A sound the caller made: speech (with its words, if any), a cough, line noise.

    `started_at` is when its first sample was taken in (for speech, the matching
    `Timeline.speech_started_at`): the start of its first frame, which is sent
    once its 20 ms are in, on the stream's schedule (a late send timer does not
    move it). `ended_at` is when its last sample was, inside its last frame when
    its length is no whole number of frames (None while it lasts); so
    `ended_at - started_at` is its length.
    """

    kind: SoundKind
    started_at: float
    ended_at: float | None = None
    text: str = ""


@dataclass(frozen=True)
class AnswerHeard:
    """How the caller heard one audio item of an answer (see `Timeline.answer_heard`).

    Positions are offsets within the item, read from the audio that played;
    frames whose position could not be read count in none of the `_ms` sums
    below but do count for the times and gaps.
    """

    heard_ms: float
    """Distinct audio of the item heard: each position counted once."""
    last_position_ms: float | None
    """Where in the item the last heard frame ended (None: no position read)."""
    in_order: bool
    """Every heard frame began within `IN_ORDER_TOLERANCE_MS` (40 ms) of where the
    frame before it ended, backwards or forwards, the first frame measured from the
    item's start; frames whose position is unreadable are passed over (neither
    checked nor moving where the next should begin). Pauses in time do not matter."""
    repeated_ms: float
    """Audio heard again: every hearing of a position after its first."""
    skipped_ms: float
    """Audio never heard before the furthest position heard (an unheard start included)."""
    gaps_ms: list[float]
    """The silences between consecutive heard frames of the item, in order (each > 0)."""
    gap_total_ms: float
    first_heard_at: float | None
    """When its first heard frame began playing (None: nothing of it was heard)."""
    last_heard_at: float | None
    """When its last heard frame stopped playing."""


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
    """When each utterance began (its first sample; speech only; see `sounds`)."""
    sounds: list[CallerSound] = field(default_factory=list)
    """Every sound the caller made, speech and noises, in order."""
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

    def answer_heard(self, tone: int, *, min_gap_ms: float = 0.0) -> AnswerHeard:
        """How the caller heard the audio item carrying `tone`, by the positions in the
        item read from the audio that played (`HeardSegment.position`; see `AnswerHeard`).

        Gaps of at most `min_gap_ms` (say, a playback buffer running dry for a
        fraction of a millisecond) are left out of `gaps_ms` and `gap_total_ms`.
        Tones wrap after `signals.MAX_TONE` items: a later item of the same tone
        mixes in.
        """
        segments = [s for s in self.heard if s.tone == tone]
        tolerance = IN_ORDER_TOLERANCE_MS * signals.BYTES_PER_MS
        spans: list[tuple[int, int]] = []
        in_order, expected, last_end = True, 0, None
        for segment in segments:
            if segment.position is None:
                continue
            in_order = in_order and abs(segment.position - expected) <= tolerance
            expected = last_end = segment.position + round(segment.ms * signals.BYTES_PER_MS)
            if last_end > max(0, segment.position):
                spans.append((max(0, segment.position), last_end))
        distinct = _union_samples(spans)
        gaps = [
            gap
            for a, b in itertools.pairwise(segments)
            if (gap := (b.start - a.end) * 1000.0) > max(0.0, min_gap_ms)
        ]
        per_ms = signals.BYTES_PER_MS
        return AnswerHeard(
            heard_ms=distinct / per_ms,
            last_position_ms=None if last_end is None else last_end / per_ms,
            in_order=in_order,
            repeated_ms=(sum(end - start for start, end in spans) - distinct) / per_ms,
            skipped_ms=(max((end for _, end in spans), default=0) - distinct) / per_ms,
            gaps_ms=gaps,
            gap_total_ms=sum(gaps),
            first_heard_at=segments[0].start if segments else None,
            last_heard_at=segments[-1].end if segments else None,
        )

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


def _union_samples(spans: list[tuple[int, int]]) -> int:
    """How many samples the half-open spans cover together."""
    covered, reach = 0, 0
    for start, end in sorted(spans):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered
