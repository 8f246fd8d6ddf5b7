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


@dataclass(frozen=True)
class SendText:
    """Send this raw text frame at this point (e.g. malformed JSON); takes no audio time."""

    text: str


Segment = Silence | Speech | SpeakWhenHeard | SendText
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
