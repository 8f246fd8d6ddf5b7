"""Sans-IO microphone: turns a caller script into one 20 ms mu-law frame per tick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from simulators import mulaw, signals, watermark
from simulators.twilio.script import (
    CallerScript,
    Dtmf,
    Noise,
    SendText,
    Silence,
    SoundKind,
    SpeakWhenHeard,
    Speech,
)

_SILENT_FRAME = mulaw.silence(signals.FRAME_BYTES)
_FRAME_S = signals.FRAME_MS / 1000.0


class PlayedAudio(Protocol):
    """What the phone played: the speakerphone's source (`Playback` is one)."""

    def played(self, start: float, n_samples: int) -> bytes:
        """The `n_samples` mu-law samples that played from monotonic time `start` on."""
        ...


@dataclass(frozen=True)
class Tick:
    """What to send for one 20 ms tick: raw texts, then keys pressed, then the frame
    (None: script over)."""

    frame: bytes | None
    texts: tuple[str, ...] = ()
    digits: str = ""
    """DTMF digits pressed at this tick (a `dtmf` message each)."""
    speaking: bool = False
    """The caller makes a sound in this frame (speech or noise)."""
    speech_onset: bool = False
    """This frame is the first of a sound (an utterance, a cough, a noise)."""
    sound: SoundKind | None = None
    """The kind of sound this frame carries (None: the caller is silent)."""
    text: str = ""
    """The words of the sound this frame belongs to ("" for none)."""
    sound_end: bool = False
    """This frame is the last of its sound."""
    sound_ms: float = 0.0
    """How much of this frame is the sound (ms from the frame's start; a sound whose
    length is no whole number of frames ends inside its last frame, the rest of it
    without the sound: quiet, or what a speakerphone leaks in). The script's next
    segment begins with the next frame."""


@dataclass
class _Utterance:
    total_samples: int
    kind: SoundKind
    words: str | None
    """The text its packets carry ("" for a noise's empty packet), None: no packet."""
    done_samples: int = 0


@dataclass
class Microphone:
    """Walks the script; `tick(now, tone_started_at)` yields the next frame."""

    script: CallerScript
    _index: int = 0
    _left_ms: int | None = None
    _utterance: _Utterance | None = None
    _digit: int = 0  # the next digit of the current Dtmf segment

    def tick(
        self,
        now: float,
        tone_started_at: Mapping[int, float],
        played: PlayedAudio | None = None,
        *,
        frame_end: float | None = None,
    ) -> Tick:
        """Next frame; `tone_started_at` maps tone -> when its audio began playing.

        With a speakerphone (`CallerScript.leak`), `played` is what the phone
        played, and the frame is the sound captured until `frame_end` (default
        `now`, the tick's own time): samples [frame_end - 20 ms, frame_end).
        """
        texts: list[str] = []
        end = now if frame_end is None else frame_end
        while True:
            if self._utterance is not None:
                return self._speak(tuple(texts), played, end)
            if self._index >= len(self.script.segments):
                return Tick(None, tuple(texts))
            segment = self.script.segments[self._index]
            if isinstance(segment, SendText):
                texts.append(segment.text)
                self._index += 1
            elif isinstance(segment, Speech):
                self._begin(segment.ms, "speech", segment.text or None)
            elif isinstance(segment, Noise):
                self._begin(segment.ms, segment.kind, "")
            elif isinstance(segment, SpeakWhenHeard):
                started = tone_started_at.get(segment.tone)
                # The sound's first sample is the frame's first: not before it is due.
                due = None if started is None else started + segment.after_ms / 1000.0
                if due is None or end - _FRAME_S < due - 1e-9:
                    return Tick(self.ambient(played, end), tuple(texts))
                words = (segment.text or None) if segment.sound == "speech" else ""
                self._begin(segment.speech_ms, segment.sound, words)
            elif isinstance(segment, Dtmf):
                digit = ""
                if self._left_ms is None:
                    if self._digit >= len(segment.digits):
                        self._digit = 0
                        self._index += 1
                        continue
                    digit = segment.digits[self._digit]
                    self._digit += 1
                    self._left_ms = segment.gap_ms
                self._left_ms -= signals.FRAME_MS
                if self._left_ms <= 0:
                    self._left_ms = None
                return Tick(self.ambient(played, end), tuple(texts), digits=digit)
            elif isinstance(segment, Silence):
                if self._left_ms is None:
                    self._left_ms = segment.ms
                if self._left_ms <= 0:
                    self._left_ms = None
                    self._index += 1
                    continue
                self._left_ms -= signals.FRAME_MS
                return Tick(self.ambient(played, end), tuple(texts))

    def ambient(self, played: PlayedAudio | None, frame_end: float) -> bytes:
        """The frame while the caller makes no sound: silence, or what leaks in."""
        return self._leaked(_SILENT_FRAME, played, frame_end)

    def _leaked(self, own: bytes, played: PlayedAudio | None, frame_end: float) -> bytes:
        leak = self.script.leak
        if leak is None or played is None:
            return own
        start = frame_end - _FRAME_S - leak.delay_ms / 1000.0
        echo = played.played(start, len(own))
        if echo.count(mulaw.SILENCE_BYTE) == len(echo):
            return own  # nothing played then: the caller's own sound, untouched
        return mulaw.mix(own, echo, leak.gain)

    def _begin(self, ms: int, kind: SoundKind, words: str | None) -> None:
        samples = max(1, ms * signals.BYTES_PER_MS)
        self._utterance = _Utterance(samples, kind, words)
        self._index += 1

    def _speak(self, texts: tuple[str, ...], played: PlayedAudio | None, frame_end: float) -> Tick:
        utterance = self._utterance
        assert utterance is not None
        done, total = utterance.done_samples, utterance.total_samples
        # The sound's samples in this frame: all of it but at the sound's end.
        n = min(signals.FRAME_BYTES, total - done)
        if utterance.kind == "speech":
            own = signals.speech_audio(done, n, total)
        else:
            own = signals.noise_audio(utterance.kind, done, n, total)
        frame = self._leaked(own + _SILENT_FRAME[n:], played, frame_end)
        if utterance.words is not None:
            frame = watermark.embed(frame[:n], utterance.words, done) + frame[n:]
        utterance.done_samples += n
        ended = utterance.done_samples >= total
        if ended:
            self._utterance = None
        return Tick(
            frame,
            texts,
            speaking=True,
            speech_onset=done == 0,
            sound=utterance.kind,
            text=utterance.words or "",
            sound_end=ended,
            sound_ms=n / signals.BYTES_PER_MS,
        )
