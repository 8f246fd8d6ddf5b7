"""Sans-IO energy voice-activity detector over 20 ms windows of mu-law input audio."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from simulators import lsb, mulaw, signals


@dataclass(frozen=True)
class VadConfig:
    """server_vad settings, as read from `audio.input.turn_detection`."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    detect_ms: int = 160


@dataclass(frozen=True)
class SpeechStarted:
    """Speech onset, in input ms since session start, already minus the prefix padding."""

    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    """End of a speech turn, in input ms; it includes the trailing silence duration."""

    audio_end_ms: int


VadEvent = SpeechStarted | SpeechStopped


def threshold_rms(threshold: float) -> float:
    """Window RMS (16-bit linear) above which a window counts as voiced.

    `threshold` 0..1 maps linearly onto -50..-10 dBFS (0.5 -> -30 dBFS, RMS ~1036).
    """
    dbfs = -50.0 + 40.0 * min(max(threshold, 0.0), 1.0)
    return float(32768.0 * 10.0 ** (dbfs / 20.0))


class EnergyVad:
    """Turns appended input audio into speech start/stop decisions."""

    def __init__(self, config: VadConfig) -> None:
        self._config = config
        self._rms_threshold = threshold_rms(config.threshold)
        self._pending = b""
        self.position_ms = 0
        """Input audio consumed so far, in ms since the session started."""
        self.speaking = False
        self._run_start_ms: int | None = None
        self._silence_ms = 0

    @property
    def config(self) -> VadConfig:
        return self._config

    def reconfigure(self, config: VadConfig) -> None:
        """Apply new settings from a `session.update`; the current state carries over."""
        self._config = config
        self._rms_threshold = threshold_rms(config.threshold)

    def feed(self, audio: bytes) -> list[VadEvent]:
        """Consume mu-law input audio; return the decisions it completes, in order."""
        data = self._pending + audio
        events: list[VadEvent] = []
        window = signals.FRAME_BYTES
        usable = len(data) - len(data) % window
        for start in range(0, usable, window):
            voiced = _window_rms(data[start : start + window]) >= self._rms_threshold
            event = self._step(voiced)
            if event is not None:
                events.append(event)
        self._pending = data[usable:]
        return events

    def _step(self, voiced: bool) -> VadEvent | None:
        window_start_ms = self.position_ms
        self.position_ms += signals.FRAME_MS
        config = self._config
        if not self.speaking:
            if not voiced:
                self._run_start_ms = None
                return None
            if self._run_start_ms is None:
                self._run_start_ms = window_start_ms
            if self.position_ms - self._run_start_ms < config.detect_ms:
                return None
            self.speaking = True
            self._silence_ms = 0
            return SpeechStarted(max(0, self._run_start_ms - config.prefix_padding_ms))
        if voiced:
            self._silence_ms = 0
            return None
        self._silence_ms += signals.FRAME_MS
        if self._silence_ms < config.silence_duration_ms:
            return None
        self.speaking = False
        self._run_start_ms = None
        return SpeechStopped(self.position_ms)


def _window_rms(window: bytes) -> float:
    # Input audio repeats (digital silence, periodic test speech): cached, a load
    # generator serving hundreds of sessions stays cheap. The LSBs, where the words
    # travel (`simulators.watermark`), would defeat the cache: they are ignored.
    return _rms(lsb.ignored(window))


@lru_cache(maxsize=4096)
def _rms(window: bytes) -> float:
    return signals.rms(mulaw.decode(window))
