"""The caller's own sound in each 20 ms frame, told apart from the echo of the AI they hear.

On a speakerphone the caller's microphone picks up the AI audio it plays, a
little later and quieter: caller frame = own voice + g * reference delayed by
d, plus noise, all re-encoded in mu-law. The bridge knows what the AI played
around each captured frame (the *reference*: mu-law bytes spanning, say, the
300 ms before the frame's capture to 60 ms after it, 0xFF where nothing
played). `VoiceMeter` fits the frame with the best scaled, delayed stretch of
that reference and judges what remains:

    meter = VoiceMeter()
    heard = meter.feed(frame, reference)   # 160 mu-law bytes, and what the AI played
    if heard.verdict is Sound.VOICE:       # the caller's own sound, maybe over echo
        ...

Pure and clock-free: one frame in, one `FrameVoice` out; the only state kept
between frames is the echo path last found (the lag into the reference), so
steady speakerphone echo is searched near it first.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]

FULL_SCALE = 32768.0
"""Linear amplitude of 0 dBFS (the RMS of a frame is measured against it)."""
MIN_DBFS = -100.0
"""Level reported for digital silence (and anything quieter), instead of minus infinity."""


def _mulaw_table() -> Samples:
    # G.711 mu-law expansion, the same as every phone's: bytes are stored inverted.
    code = ~np.arange(256, dtype=np.int64) & 0xFF
    exponent = (code >> 4) & 0x07
    magnitude = ((((code & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.float64)


_DECODE = _mulaw_table()


def _decode(data: bytes) -> Samples:
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def _dbfs(mean_square: float) -> float:
    if mean_square <= 0.0:
        return MIN_DBFS
    return max(MIN_DBFS, 10.0 * math.log10(mean_square / (FULL_SCALE * FULL_SCALE)))


# The AI audio a frame is judged against, or a function that makes it.
Reference = bytes | Callable[[], bytes]


class Sound(enum.StrEnum):
    """What a frame holds of the caller's side."""

    SILENT = "silent"  # below the floor
    ECHO = "echo"  # loud, and explained by the AI audio the caller was hearing
    VOICE = "voice"  # loud, and the caller's own sound is there (alone or over echo)


class Search(enum.StrEnum):
    """How much correlation work a frame took."""

    NONE = "none"  # a quiet frame, or no audible reference: nothing to search
    TRACKED = "tracked"  # explained near the echo path found in earlier frames
    FULL = "full"  # every lag of the reference was tried


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    """How the meter judges a frame.

    - `floor_dbfs`: a frame (RMS against full scale 32768) below this is
      SILENT; what remains of a loud frame once the echo is removed must reach
      it to be the caller's own sound. So the caller's voice is judged against
      the same floor with or without echo on top of it.
    - `echo_min_correlation`: the least |normalized correlation| between the
      frame and the fitted reference for ECHO. The residual test alone would
      call a frame just above the floor echo on a weak fit.
    - `max_echo_gain`: the loudest echo path believed, as linear gain on the
      reference; a lag that needs more (a near-silent stretch of reference
      shaped like the frame by chance) is no echo.
    - `track_min_correlation`: a lag found by the full search with at least
      this |correlation| (and that explains its frame) becomes the tracked
      echo path.
    - `track_window_samples`: the next frames are fitted first within this
      many samples either side of the tracked lag (the bridge's reference
      window may jitter against the capture); 0 disables tracking.
    - `fit_taps`: when the best lag correlates but one tap leaves too much,
      the residual is taken after a least-squares filter of this many taps
      centred on it (odd; 1: the plain scaled, delayed copy). A real echo is
      delayed by a fraction of a sample too, and coloured by the phone: with
      one tap, a 1 kHz tone half a sample late leaves 8 dB under the echo.

    Raises `ValueError` on a value out of range.
    """

    floor_dbfs: float = -35.0
    echo_min_correlation: float = 0.6
    max_echo_gain: float = 2.0
    track_min_correlation: float = 0.9
    track_window_samples: int = 80
    fit_taps: int = 3

    def __post_init__(self) -> None:
        if not MIN_DBFS < self.floor_dbfs < 0.0:
            raise ValueError(
                f"VoiceConfig.floor_dbfs must be between {MIN_DBFS} and 0, got {self.floor_dbfs}"
            )
        for name in ("echo_min_correlation", "track_min_correlation"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"VoiceConfig.{name} must be between 0 and 1, got {value}")
        if self.track_min_correlation < self.echo_min_correlation:
            raise ValueError(
                f"VoiceConfig.track_min_correlation ({self.track_min_correlation}) must be"
                f" >= echo_min_correlation ({self.echo_min_correlation})"
            )
        if not self.max_echo_gain > 0.0:
            raise ValueError(f"VoiceConfig.max_echo_gain must be > 0, got {self.max_echo_gain}")
        window = self.track_window_samples
        if not isinstance(window, int) or isinstance(window, bool) or window < 0:
            raise ValueError(f"VoiceConfig.track_window_samples must be an int >= 0, got {window}")
        taps = self.fit_taps
        if not isinstance(taps, int) or isinstance(taps, bool) or taps < 1 or taps % 2 == 0:
            raise ValueError(f"VoiceConfig.fit_taps must be an odd int >= 1, got {taps}")


@dataclass(frozen=True, slots=True)
class FrameVoice:
    """The meter's reading of one caller frame.

    - `level_dbfs`: the frame's RMS level (`MIN_DBFS` for digital silence).
    - `loud`: `level_dbfs >= floor_dbfs`.
    - `verdict`: SILENT when not loud; ECHO when the best fit explains the
      frame (|correlation| >= `echo_min_correlation` and residual below the
      floor); VOICE otherwise, including every loud frame with no audible
      reference.
    - `echo_gain`: least-squares gain of the fitted reference stretch (0.0
      when none was fitted; negative for an inverted echo path).
    - `echo_delay_samples`: where the fitted stretch begins in `reference`,
      in samples from its first byte; None when none was fitted. If the
      reference starts `lead` samples before the frame's first captured
      sample, the echo's delay is `lead - echo_delay_samples`. The AI's tones
      and vowels are periodic: several lags then fit equally, any of them.
    - `correlation`: normalized correlation of the frame with that stretch.
    - `residual_dbfs`: level of what remains once the fitted echo is removed
      (after the short filter of `fit_taps` when it ran; the frame's own level
      when nothing was fitted).
    - `search`: how much correlation work the frame took.
    """

    level_dbfs: float
    loud: bool
    verdict: Sound
    echo_gain: float
    echo_delay_samples: int | None
    correlation: float
    residual_dbfs: float
    search: Search


@dataclass(frozen=True, slots=True)
class _Fit:
    lag: int
    gain: float
    correlation: float
    residual_energy: float


def _best_lag(x: Samples, energy: float, r: Samples, max_gain: float) -> _Fit | None:
    """The lag of `r` whose scaled copy leaves least of `x` (one tap), from `r`'s start.

    Least squares per lag k: gain c_k / E_k, energy explained c_k^2 / E_k, with
    c the cross-correlation and E the energy of r under the frame at k. None
    when no lag is a plausible echo (gain within `max_gain`).
    """
    n = len(x)
    c = np.correlate(r, x, "valid")
    running = np.cumsum(r * r)
    er = running[n - 1 :].copy()
    er[1:] -= running[:-n]
    np.maximum(er, 1.0, out=er)  # digital silence: no energy, no fit
    explained = c * c
    explained /= er
    k = int(np.argmax(explained))
    if abs(c[k]) > max_gain * er[k]:  # rare: mask every implausible lag, look again
        explained[np.abs(c) > max_gain * er] = 0.0
        k = int(np.argmax(explained))
    if explained[k] <= 0.0:
        return None
    return _Fit(
        lag=k,
        gain=float(c[k] / er[k]),
        correlation=float(c[k] / math.sqrt(energy * er[k])),
        residual_energy=max(0.0, energy - float(explained[k])),
    )


def _filtered_residual(x: Samples, energy: float, r: Samples, lag: int, taps: int) -> float:
    """What remains of `x` after the least-squares filter of `taps` taps on `r` centred on `lag`.

    A real echo is not delayed by a whole number of samples, and the phone's
    loudspeaker and microphone colour it: one tap leaves part of it behind.
    """
    n = len(x)
    lo = max(0, lag - taps // 2)
    hi = min(len(r) - n, lag + taps // 2)
    shifted = np.stack([r[j : j + n] for j in range(lo, hi + 1)])
    gram = shifted @ shifted.T
    projections = shifted @ x
    # A tone's shifts are nearly dependent: a touch of ridge keeps the solve well posed.
    gram.flat[:: len(gram) + 1] += 1e-9 * float(np.trace(gram)) + 1e-9
    explained = float(projections @ np.linalg.solve(gram, projections))
    return min(energy, max(0.0, energy - explained))


class VoiceMeter:
    """Reads caller frames one at a time against the AI audio they heard.

    Keeps the echo path between frames: once a full search finds a lag that
    explains a frame with confidence, following frames are fitted near it
    first, and searched in full only when that fit does not explain them.
    A frame it does not explain (double talk, noise) leaves it in place.
    """

    def __init__(self, config: VoiceConfig | None = None) -> None:
        self.config = config or VoiceConfig()
        floor = FULL_SCALE * 10.0 ** (self.config.floor_dbfs / 20.0)
        self._floor_mean_square = floor * floor
        # Bytes that not even the loudest echo path could make audible.
        self._inaudible = bytes(
            b for b in range(256) if abs(_DECODE[b]) * self.config.max_echo_gain < floor
        )
        # Bytes below the floor: a frame of nothing else has its RMS below it too.
        self._below_floor = bytes(b for b in range(256) if abs(_DECODE[b]) < floor)
        self._tracked_lag: int | None = None

    def quiet(self, frame: bytes) -> bool:
        """Whether `frame` is surely below the floor (every sample is): `feed` would say
        SILENT. Costs a byte scan, no decoding: most of a call's frames are quiet."""
        return not frame.translate(None, self._below_floor)

    @property
    def tracked_lag(self) -> int | None:
        """The echo path followed, as a lag into the reference (None until found)."""
        return self._tracked_lag

    def feed(self, frame: bytes, reference: Reference = b"") -> FrameVoice:
        """Judge one mu-law `frame` against `reference`, the mu-law AI audio around it.

        `reference` must cover the frame's capture with margins for the echo
        delay and for the uncertainty of its alignment; empty when the AI was
        not playing. A reference shorter than the frame is not searched. It may
        be given as a function that makes it: called only for a loud frame (most
        frames are quiet, and need no reference at all).
        """
        x = _decode(frame)
        n = len(x)
        energy = float(x @ x)
        level = _dbfs(energy / n) if n else MIN_DBFS
        if not n or energy < self._floor_mean_square * n:
            return FrameVoice(level, False, Sound.SILENT, 0.0, None, 0.0, level, Search.NONE)
        if callable(reference):
            reference = reference()
        last = len(reference) - n
        if last < 0 or not reference.translate(None, self._inaudible):
            return FrameVoice(level, True, Sound.VOICE, 0.0, None, 0.0, level, Search.NONE)

        tracked = self._tracked_lag
        window = self.config.track_window_samples
        if tracked is not None and window:
            lo, hi = max(0, tracked - window), min(last, tracked + window)
            fit = self._fit(x, energy, reference[lo : hi + n], lo) if lo <= hi else None
            if fit is not None and self._explains(fit, n):
                self._tracked_lag = fit.lag
                return self._reading(level, fit, n, Sound.ECHO, Search.TRACKED)

        fit = self._fit(x, energy, reference, 0)
        if fit is None:
            return FrameVoice(level, True, Sound.VOICE, 0.0, None, 0.0, level, Search.FULL)
        if not self._explains(fit, n):
            return self._reading(level, fit, n, Sound.VOICE, Search.FULL)
        if abs(fit.correlation) >= self.config.track_min_correlation:
            self._tracked_lag = fit.lag
        return self._reading(level, fit, n, Sound.ECHO, Search.FULL)

    def _fit(self, x: Samples, energy: float, span: bytes, origin: int) -> _Fit | None:
        """The best one-tap fit of `x` in `span` (the reference from `origin` on), its
        residual refined by a short filter when one tap correlates but leaves too much,
        so that only echo-like frames pay for it. Its lag counts from the reference's start.
        """
        r = _decode(span)
        fit = _best_lag(x, energy, r, self.config.max_echo_gain)
        if fit is None:
            return None
        residual = fit.residual_energy
        taps = self.config.fit_taps
        if (
            taps > 1
            and not self._explains(fit, len(x))
            and abs(fit.correlation) >= self.config.echo_min_correlation
        ):
            residual = min(residual, _filtered_residual(x, energy, r, fit.lag, taps))
        return _Fit(fit.lag + origin, fit.gain, fit.correlation, residual)

    def _explains(self, fit: _Fit, n: int) -> bool:
        """The fitted echo leaves less than the floor, and is no chance resemblance."""
        return (
            abs(fit.correlation) >= self.config.echo_min_correlation
            and fit.residual_energy < self._floor_mean_square * n
        )

    @staticmethod
    def _reading(level: float, fit: _Fit, n: int, verdict: Sound, search: Search) -> FrameVoice:
        return FrameVoice(
            level_dbfs=level,
            loud=True,
            verdict=verdict,
            echo_gain=fit.gain,
            echo_delay_samples=fit.lag,
            correlation=fit.correlation,
            residual_dbfs=_dbfs(fit.residual_energy / n),
            search=search,
        )
