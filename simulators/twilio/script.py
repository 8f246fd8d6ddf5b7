"""Declarative caller scripts: what the simulated caller says, when, and how the call ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Silence:
    """`ms` of digital silence (mu-law 0xFF)."""

    ms: int


@dataclass(frozen=True)
class Speech:
    """`ms` of voiced, speech-like audio, well above the Realtime sim's VAD threshold."""

    ms: int


@dataclass(frozen=True)
class SpeakWhenHeard:
    """Stay silent until response tone `tone` has been playing `after_ms`, then speak.

    The trigger is relative to when the first audio of that tone began playing at the phone,
    which is what barge-in tests need. Speech starts on the first 20 ms frame at or after it.
    """

    tone: int
    after_ms: int = 0
    speech_ms: int = 1000


DTMF_DIGITS = "0123456789*#"


@dataclass(frozen=True)
class Dtmf:
    """Press keys: one `dtmf` message per digit, `gap_ms` apart, audio (silence) flowing.

    Each digit takes `gap_ms` (rounded up to whole 20 ms frames, at least one):
    the segment after it starts `gap_ms` after the last digit.
    """

    digits: str
    gap_ms: int = 200

    def __post_init__(self) -> None:
        if not self.digits or any(digit not in DTMF_DIGITS for digit in self.digits):
            raise ValueError(f"Dtmf digits must be some of {DTMF_DIGITS!r}, not {self.digits!r}")
        if self.gap_ms < 0:
            raise ValueError("Dtmf gap_ms must not be negative")


@dataclass(frozen=True)
class SendText:
    """Send this raw text frame at this point (e.g. malformed JSON); takes no audio time."""

    text: str


Segment = Silence | Speech | SpeakWhenHeard | SendText | Dtmf
Hangup = Literal["stop", "drop"]


@dataclass(frozen=True)
class CallerScript:
    """The caller's side of one call.

    After the segments: `hangup="stop"` sends `stop` and closes the socket, `"drop"` aborts
    the TCP connection with no `stop` (network loss), and None keeps streaming silence until
    the server ends the call (or `TwilioCaller.hangup()` is called).

    `withhold_echoes_from_tone` is a fault on Twilio's side: once response tone N has
    begun playing, the echo of every mark placed after that point is lost (never sent,
    whether playback reached the mark or a `clear` returned it). The audio still plays.
    """

    segments: tuple[Segment, ...] = ()
    hangup: Hangup | None = None
    withhold_echoes_from_tone: int | None = None
