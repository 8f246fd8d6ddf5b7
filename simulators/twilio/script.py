"""Declarative caller scripts: what the simulated caller says, when, and how the call ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulators import signals, watermark
from simulators.signals import NoiseKind

SoundKind = Literal["speech", "cough", "noise"]
"""What a caller's sound is: words (or wordless speech), a cough, line noise."""


@dataclass(frozen=True)
class Silence:
    """`ms` of digital silence (mu-law 0xFF)."""

    ms: int


def _check_words(text: str, ms: int) -> None:
    """The words must fit in the sound at least once (`watermark`): in its own samples,
    not in the quiet rest of the frame it ends in."""
    if text and watermark.packet_samples(text) > max(1, ms * signals.BYTES_PER_MS):
        raise ValueError(f"{ms} ms of speech is too short to carry the words {text!r}")


@dataclass(frozen=True)
class Speech:
    """`ms` of voiced, speech-like audio, well above the Realtime sim's VAD threshold.

    `text` is what the caller says: it travels in the audio (`simulators.watermark`),
    and the Realtime stand-in's transcription hears it there. Without text the
    audio is wordless speech, exactly as before words existed.
    """

    ms: int
    text: str = ""

    def __post_init__(self) -> None:
        _check_words(self.text, self.ms)


@dataclass(frozen=True)
class Noise:
    """`ms` of noise: a cough (a short loud burst) or steady line noise.

    Either is loud enough for the Realtime stand-in's VAD to take it for speech
    once it lasts `speech_detect_ms`; its audio carries no words (transcript "").
    """

    ms: int
    kind: NoiseKind = "noise"


@dataclass(frozen=True)
class SpeakWhenHeard:
    """Stay silent until response tone `tone` has been playing `after_ms`, then speak.

    The trigger is relative to when the first audio of that tone began playing at the phone,
    which is what barge-in tests need. Speech starts on the first 20 ms frame at or after it.
    It lasts `speech_ms` and says `text` (see `Speech`); with `sound` "cough" or "noise"
    the caller makes that noise instead (see `Noise`), which has no words.
    """

    tone: int
    after_ms: int = 0
    speech_ms: int = 1000
    text: str = ""
    sound: SoundKind = "speech"

    def __post_init__(self) -> None:
        if self.text and self.sound != "speech":
            raise ValueError(f"a {self.sound} carries no words, not {self.text!r}")
        _check_words(self.text, self.speech_ms)


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


Segment = Silence | Speech | Noise | SpeakWhenHeard | SendText | Dtmf
Hangup = Literal["stop", "drop"]


@dataclass(frozen=True)
class Leak:
    """A speakerphone: the microphone hears what the phone plays, `delay_ms` later.

    Every microphone frame is the caller's own sound plus `gain` x the samples the
    phone played `delay_ms` earlier (mixed in linear PCM, clipped); the caller's
    words are written into the mix afterwards, so they survive it. At the default
    gain a response tone leaks back at up to about -23 dBFS (RMS ~2200), its
    softest syllables just under -30 dBFS: the Realtime stand-in's VAD (0.5,
    -30 dBFS) takes it for speech within its first two syllables (about 250 ms each).
    """

    delay_ms: int = 40
    gain: float = 0.35

    def __post_init__(self) -> None:
        if self.delay_ms < 0:
            raise ValueError("Leak delay_ms must not be negative")
        if self.gain < 0:
            raise ValueError("Leak gain must not be negative")


@dataclass(frozen=True)
class CallerScript:
    """The caller's side of one call.

    After the segments: `hangup="stop"` sends `stop` and closes the socket, `"drop"` aborts
    the TCP connection with no `stop` (network loss), and None keeps streaming silence until
    the server ends the call (or `TwilioCaller.hangup()` is called).

    `withhold_echoes_from_tone` is a fault on Twilio's side: once response tone N has
    begun playing, the echo of every mark placed after that point is lost (never sent,
    whether playback reached the mark or a `clear` returned it). The audio still plays.

    `leak` makes the phone a speakerphone: what it plays comes back into the
    microphone (see `Leak`).
    """

    segments: tuple[Segment, ...] = ()
    hangup: Hangup | None = None
    withhold_echoes_from_tone: int | None = None
    leak: Leak | None = None
