"""Sans-IO microphone: turns a caller script into one 20 ms mu-law frame per tick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from simulators import mulaw, signals
from simulators.twilio.script import (
    CallerScript,
    Dtmf,
    SendText,
    Silence,
    SpeakWhenHeard,
    Speech,
)

_SILENT_FRAME = mulaw.silence(signals.FRAME_BYTES)


@dataclass(frozen=True)
class Tick:
    """What to send for one 20 ms tick: raw texts, then keys pressed, then the frame
    (None: script over)."""

    frame: bytes | None
    texts: tuple[str, ...] = ()
    digits: str = ""
    """DTMF digits pressed at this tick (a `dtmf` message each)."""
    speaking: bool = False
    speech_onset: bool = False
    """This frame is the first of an utterance."""


@dataclass
class _Utterance:
    total_samples: int
    done_samples: int = 0


@dataclass
class Microphone:
    """Walks the script; `tick(now, tone_started_at)` yields the next frame."""

    script: CallerScript
    _index: int = 0
    _left_ms: int | None = None
    _utterance: _Utterance | None = None
    _digit: int = 0  # the next digit of the current Dtmf segment

    def tick(self, now: float, tone_started_at: Mapping[int, float]) -> Tick:
        """Next frame; `tone_started_at` maps tone -> when its audio began playing."""
        texts: list[str] = []
        while True:
            if self._utterance is not None:
                onset = self._utterance.done_samples == 0
                return Tick(self._speak(), tuple(texts), speaking=True, speech_onset=onset)
            if self._index >= len(self.script.segments):
                return Tick(None, tuple(texts))
            segment = self.script.segments[self._index]
            if isinstance(segment, SendText):
                texts.append(segment.text)
                self._index += 1
            elif isinstance(segment, Speech):
                self._begin(segment.ms)
            elif isinstance(segment, SpeakWhenHeard):
                started = tone_started_at.get(segment.tone)
                if started is None or now < started + segment.after_ms / 1000.0:
                    return Tick(_SILENT_FRAME, tuple(texts))
                self._begin(segment.speech_ms)
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
                return Tick(_SILENT_FRAME, tuple(texts), digits=digit)
            elif isinstance(segment, Silence):
                if self._left_ms is None:
                    self._left_ms = segment.ms
                if self._left_ms <= 0:
                    self._left_ms = None
                    self._index += 1
                    continue
                self._left_ms -= signals.FRAME_MS
                return Tick(_SILENT_FRAME, tuple(texts))

    def _begin(self, ms: int) -> None:
        frames = max(1, -(-ms // signals.FRAME_MS))
        self._utterance = _Utterance(frames * signals.FRAME_BYTES)
        self._index += 1

    def _speak(self) -> bytes:
        utterance = self._utterance
        assert utterance is not None
        frame = signals.speech_audio(
            utterance.done_samples, signals.FRAME_BYTES, utterance.total_samples
        )
        utterance.done_samples += signals.FRAME_BYTES
        if utterance.done_samples >= utterance.total_samples:
            self._utterance = None
        return frame
