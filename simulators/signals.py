"""Synthetic sounds: identifying response tones, caller speech and noises, the tone detector."""

from __future__ import annotations

import itertools
import math
import random
from functools import lru_cache
from typing import Literal

from simulators import lsb, mulaw

SAMPLE_RATE_HZ = 8000
BYTES_PER_MS = 8
FRAME_MS = 20
FRAME_BYTES = FRAME_MS * BYTES_PER_MS

SILENCE = 0
"""`detect_tone` result for a frame with (almost) no energy."""
UNKNOWN = -1
"""`detect_tone` result for audible audio that is not a response tone."""
MAX_TONE = 30
"""Tones are numbered 1..MAX_TONE; response indexes beyond that wrap around."""

_TONE_BASE_HZ = 300
_TONE_STEP_HZ = 100
_TONE_TOLERANCE_HZ = 30
_TONE_AMPLITUDE = 9000
# 250 ms: one "syllable" of amplitude modulation, and an integer number of cycles of
# every tone (all multiples of 100 Hz), so a cached period tiles without seams.
_TONE_PERIOD_SAMPLES = 2000
# 256 ms: the speech modulation period, an integer number of 125 Hz cycles.
_SPEECH_PERIOD_SAMPLES = 2048
_SPEECH_F0_HZ = 125
_SPEECH_RMS = 5000.0
_RAMP_SAMPLES = 240  # 30 ms soft attack and release
_SILENCE_RMS = 60.0
_MIN_CROSSINGS = 4
# Noises: one seeded period of white noise (512 ms), steady for line noise, shaped
# into a burst for a cough. Both stay well above the VAD's -30 dBFS (RMS ~1036).
_NOISE_PERIOD_SAMPLES = 4096
_NOISE_SEED = 31931
_LINE_NOISE_RMS = 3000.0  # about -21 dBFS
_COUGH_PEAK_RMS = 12000.0  # about -9 dBFS
_COUGH_END_GAIN = 0.25  # the burst decays to -12 dB by its end...
_COUGH_ATTACK_SAMPLES = 40  # ...after a 5 ms attack, and closes with a 5 ms release

NoiseKind = Literal["cough", "noise"]


def tone_for_response(response_index: int) -> int:
    """Tone number for the 1-based index of a response within its session."""
    return (response_index - 1) % MAX_TONE + 1


def tone_for_item(response_index: int, item_number: int) -> int:
    """Tone number for the `item_number`-th (1-based) audio item of a response: the
    response's own tone for its first, tones half the range away for more."""
    return (response_index - 1 + (MAX_TONE // 2) * (item_number - 1)) % MAX_TONE + 1


def tone_frequency_hz(tone: int) -> int:
    """Frequency carried by `tone` (1..MAX_TONE)."""
    if not 1 <= tone <= MAX_TONE:
        raise ValueError(f"tone must be in 1..{MAX_TONE}, got {tone}")
    return _TONE_BASE_HZ + _TONE_STEP_HZ * tone


@lru_cache(maxsize=MAX_TONE)
def _tone_linear(tone: int) -> tuple[int, ...]:
    freq = tone_frequency_hz(tone)
    out = []
    for n in range(_TONE_PERIOD_SAMPLES):
        syllable = 0.7 + 0.3 * math.sin(2 * math.pi * n / _TONE_PERIOD_SAMPLES)
        out.append(round(_TONE_AMPLITUDE * syllable * math.sin(2 * math.pi * freq * n / 8000)))
    return tuple(out)


@lru_cache(maxsize=1)
def _speech_linear() -> tuple[int, ...]:
    # A 125 Hz glottal-like source with harmonics shaped by two formant bumps.
    weights = []
    for h in range(1, 25):
        f = _SPEECH_F0_HZ * h
        formants = math.exp(-(((f - 600) / 250) ** 2)) + 0.6 * math.exp(-(((f - 1500) / 350) ** 2))
        weights.append((f, (0.25 + formants) / h**0.5))
    raw = []
    for n in range(_SPEECH_PERIOD_SAMPLES):
        syllable = 0.65 + 0.35 * math.sin(2 * math.pi * n / _SPEECH_PERIOD_SAMPLES)
        value = sum(w * math.sin(2 * math.pi * f * n / SAMPLE_RATE_HZ) for f, w in weights)
        raw.append(syllable * value)
    rms = math.sqrt(sum(v * v for v in raw) / len(raw))
    return tuple(round(v * _SPEECH_RMS / rms) for v in raw)


def _render(
    linear: tuple[int, ...], start_sample: int, n_samples: int, total_samples: int
) -> bytes:
    period = len(linear)
    encoded = _encoded(linear)
    offset = start_sample % period
    body = bytearray((encoded * (n_samples // period + 2))[offset : offset + n_samples])
    end = start_sample + n_samples
    # Soft attack and release, so onsets and offsets are voice-like rather than clicks.
    for i in range(start_sample, min(end, _RAMP_SAMPLES)):
        body[i - start_sample] = mulaw.encode_sample(linear[i % period] * i // _RAMP_SAMPLES)
    for i in range(max(start_sample, total_samples - _RAMP_SAMPLES), min(end, total_samples)):
        gain = total_samples - i
        body[i - start_sample] = mulaw.encode_sample(linear[i % period] * gain // _RAMP_SAMPLES)
    return bytes(body)


@lru_cache(maxsize=MAX_TONE + 1)
def _encoded(linear: tuple[int, ...]) -> bytes:
    return mulaw.encode(linear)


def tone_audio(tone: int, start_sample: int, n_samples: int, total_samples: int) -> bytes:
    """Mu-law samples [start, start + n) of an utterance of `total_samples` carrying `tone`."""
    return _render(_tone_linear(tone), start_sample, n_samples, total_samples)


def speech_audio(start_sample: int, n_samples: int, total_samples: int) -> bytes:
    """Mu-law samples [start, start + n) of a voiced caller utterance of `total_samples`."""
    return _render(_speech_linear(), start_sample, n_samples, total_samples)


@lru_cache(maxsize=1)
def _white_noise() -> tuple[float, ...]:
    rng = random.Random(_NOISE_SEED)
    raw = [rng.gauss(0.0, 1.0) for _ in range(_NOISE_PERIOD_SAMPLES)]
    scale = math.sqrt(sum(v * v for v in raw) / len(raw))
    return tuple(v / scale for v in raw)


@lru_cache(maxsize=1)
def _line_noise_linear() -> tuple[int, ...]:
    return tuple(round(v * _LINE_NOISE_RMS) for v in _white_noise())


def _cough_gain(i: int, total_samples: int) -> float:
    if i < _COUGH_ATTACK_SAMPLES:
        return i / _COUGH_ATTACK_SAMPLES
    if i >= total_samples - _COUGH_ATTACK_SAMPLES:
        return (total_samples - i) / _COUGH_ATTACK_SAMPLES * _COUGH_END_GAIN
    decay_samples = max(1, total_samples - _COUGH_ATTACK_SAMPLES)
    return float(_COUGH_END_GAIN ** ((i - _COUGH_ATTACK_SAMPLES) / decay_samples))


def noise_audio(kind: NoiseKind, start_sample: int, n_samples: int, total_samples: int) -> bytes:
    """Mu-law samples [start, start + n) of a noise of `total_samples`, seeded (deterministic).

    "noise" is steady broadband line noise (RMS ~3000, about -21 dBFS) with soft
    edges; "cough" a broadband burst with a sharp attack (5 ms) to RMS ~12000 (about
    -9 dBFS), decaying to a quarter of that by its end. Neither carries a tone.
    """
    if kind == "noise":
        return _render(_line_noise_linear(), start_sample, n_samples, total_samples)
    noise = _white_noise()
    period = len(noise)
    return mulaw.encode(
        round(noise[i % period] * _COUGH_PEAK_RMS * _cough_gain(i, total_samples))
        for i in range(start_sample, start_sample + n_samples)
    )


def rms(samples: list[int]) -> float:
    """Root mean square of linear samples (0.0 for none)."""
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def detect_tone(frame: bytes) -> int:
    """Which response tone a mu-law frame (typically 20 ms) carries.

    Returns the tone number (1..MAX_TONE), `SILENCE`, or `UNKNOWN`. The frequency is
    estimated from the span between the first and last zero crossing, so a frame that
    is only partly filled with a tone (its start or end) is still attributed.
    The LSBs (where the stand-ins write their watermarks) are ignored, and the
    answer cached: response tones are periodic, so the same frames come back again
    and again.
    """
    return _tone_of(lsb.ignored(frame))


@lru_cache(maxsize=8192)
def _tone_of(frame: bytes) -> int:
    samples = mulaw.decode(frame)
    if rms(samples) < _SILENCE_RMS:
        return SILENCE
    where: list[float] = []
    prev = samples[0]
    for i in range(1, len(samples)):
        cur = samples[i]
        if (prev < 0) != (cur < 0):
            # Interpolate where the waveform crossed zero between samples i-1 and i.
            where.append(i - 1 + prev / (prev - cur))
        prev = cur
    if len(where) < _MIN_CROSSINGS:
        return UNKNOWN
    half_period = (where[-1] - where[0]) / (len(where) - 1)
    # A tone crosses zero at a steady pace; voice and noise do not.
    for a, b in itertools.pairwise(where):
        if abs((b - a) - half_period) > 0.3 * half_period + 0.35:
            return UNKNOWN
    freq = SAMPLE_RATE_HZ / (2.0 * half_period)
    tone = round((freq - _TONE_BASE_HZ) / _TONE_STEP_HZ)
    if 1 <= tone <= MAX_TONE and abs(freq - tone_frequency_hz(tone)) <= _TONE_TOLERANCE_HZ:
        return tone
    return UNKNOWN
