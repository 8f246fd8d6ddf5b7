"""The echo-aware voice meter, on synthetic speakerphone calls.

The AI speaks with `signals.tone_audio`; the caller with `signals.speech_audio`.
The caller's microphone hears own voice + gain * (AI audio delayed) + noise,
re-encoded in mu-law. Each caller frame comes with the AI audio from 300 ms
before its capture to 60 ms after it, shifted by a misalignment.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest

from callcore.voice import FrameVoice, Search, Sound, VoiceConfig, VoiceMeter
from simulators import mulaw, signals

FRAME = signals.FRAME_BYTES
LEAD = 300 * signals.BYTES_PER_MS  # the reference starts this long before the capture
REFERENCE = LEAD + FRAME + 60 * signals.BYTES_PER_MS
FLOOR_DBFS = VoiceConfig().floor_dbfs
UTTERANCE = 2000 * signals.BYTES_PER_MS
BEFORE, AFTER = 200 * signals.BYTES_PER_MS, 400 * signals.BYTES_PER_MS
NOISE_DBFS = -55.0

Linear = np.ndarray[tuple[int], np.dtype[np.float64]]


def linear(data: bytes) -> Linear:
    return np.array(mulaw.decode(data), dtype=np.float64)


# The codec's own encoding of every 16-bit value, so a timeline encodes in one lookup.
_ENCODED = np.frombuffer(mulaw.encode(range(-32768, 32768)), dtype=np.uint8)


def encode(samples: Linear) -> bytes:
    clipped = np.clip(np.rint(samples), -32768, 32767).astype(np.int64)
    return _ENCODED[clipped + 32768].tobytes()


def dbfs(samples: Linear) -> float:
    mean_square = float(np.mean(samples * samples))
    return 10 * math.log10(mean_square / 32768**2) if mean_square > 0 else -math.inf


def delayed(samples: Linear, delay: int) -> Linear:
    out = np.zeros_like(samples)
    out[delay:] = samples[: len(samples) - delay]
    return out


def noise(n: int, level_dbfs: float, seed: int = 0) -> Linear:
    return np.random.default_rng(seed).normal(0.0, 32768 * 10 ** (level_dbfs / 20), n)


def ai_speaking(tone: int) -> bytes:
    """What the AI played: silence, a two-second answer carrying `tone`, silence."""
    answer = signals.tone_audio(tone, 0, UTTERANCE, UTTERANCE)
    return mulaw.silence(BEFORE) + answer + mulaw.silence(AFTER)


def caller_speaking(start: int, level_dbfs: float) -> Linear:
    """The caller's utterance on the same timeline as `ai_speaking`, at `level_dbfs` RMS."""
    speech = linear(signals.speech_audio(0, UTTERANCE, UTTERANCE))
    speech *= 10 ** ((level_dbfs - dbfs(speech)) / 20)
    timeline = np.zeros(BEFORE + UTTERANCE + AFTER)
    timeline[start : start + UTTERANCE] = speech
    return timeline


def echo_of(ai: bytes, gain: float, delay: int) -> Linear:
    return gain * delayed(linear(ai), delay)


def level_of_echo(echo: Linear) -> float:
    return dbfs(echo[np.abs(echo) > 0])


def window(ai: bytes, start: int) -> bytes:
    """`REFERENCE` bytes of the AI's audio from `start` (silence outside it)."""
    pad = mulaw.silence(REFERENCE)
    padded = pad + ai + pad
    return padded[start + REFERENCE : start + 2 * REFERENCE]


def meter_call(
    mic: bytes,
    ai: bytes | None,
    misalign: int = 0,
    jitter: Sequence[int] = (0,),
    meter: VoiceMeter | None = None,
) -> list[FrameVoice]:
    """Feed every caller frame with its reference (none when `ai` is None).

    The reference window starts `misalign` samples (plus the frame's `jitter`,
    taken in turn) late against the capture.
    """
    meter = meter or VoiceMeter()
    readings = []
    for i in range(len(mic) // FRAME):
        start = i * FRAME
        shift = misalign + jitter[i % len(jitter)]
        reference = b"" if ai is None else window(ai, start - LEAD + shift)
        readings.append(meter.feed(mic[start : start + FRAME], reference))
    return readings


def verdicts(readings: Sequence[FrameVoice]) -> Counter[Sound]:
    return Counter(r.verdict for r in readings if r.loud)


def frame_levels(samples: Linear) -> list[float]:
    return [dbfs(samples[i : i + FRAME]) for i in range(0, len(samples) - FRAME + 1, FRAME)]


def test_levels_follow_the_mu_law_codec() -> None:
    meter = VoiceMeter()
    for byte in range(256):
        value = abs(mulaw.DECODE_TABLE[byte])
        expected = 20 * math.log10(value / 32768) if value else -100.0
        assert meter.feed(bytes([byte]) * FRAME).level_dbfs == pytest.approx(expected)


@pytest.mark.parametrize("reference", ["none", "silent", "ai"])
def test_silence_takes_no_correlation_work(reference: str) -> None:
    ai = {"none": None, "silent": mulaw.silence(BEFORE + UTTERANCE + AFTER), "ai": ai_speaking(7)}
    quiet = encode(noise(BEFORE + UTTERANCE + AFTER, -50.0))
    for mic in (mulaw.silence(len(quiet)), quiet):
        readings = meter_call(mic, ai[reference])
        assert {(r.verdict, r.loud, r.search) for r in readings} == {
            (Sound.SILENT, False, Search.NONE)
        }
        assert all(r.echo_delay_samples is None and r.correlation == 0.0 for r in readings)
    assert meter_call(mulaw.silence(FRAME), None)[0].level_dbfs == -100.0


@pytest.mark.parametrize("reference", ["none", "silent", "ai"])
def test_caller_speech_alone_is_voice(reference: str) -> None:
    """A headset (no echo), with the AI silent or talking over the caller."""
    speech = caller_speaking(BEFORE, -20.0)
    mic = encode(speech + noise(len(speech), NOISE_DBFS))
    ai = {"none": None, "silent": mulaw.silence(len(mic)), "ai": ai_speaking(2)}[reference]

    counts = verdicts(meter_call(mic, ai))

    assert counts == {Sound.VOICE: counts[Sound.VOICE]}
    assert counts[Sound.VOICE] >= UTTERANCE // FRAME - 2


@pytest.mark.parametrize(
    ("tone", "gain", "delay", "misalign"),
    [
        (1, 0.2, 0, 0),
        (7, 0.4, 40 * 8 + 3, 320),
        (7, 0.6, 40 * 8 + 3, -320),
        (30, 0.2, 250 * 8, 320),
        (30, 0.6, 250 * 8, -320),
        (2, 0.5, 123 * 8 + 5, 160),
        (13, 0.3, 3, -160),
        (22, 0.6, 199 * 8 + 1, 37),
    ],
)
def test_pure_echo_is_echo(tone: int, gain: float, delay: int, misalign: int) -> None:
    ai = ai_speaking(tone)
    echo = echo_of(ai, gain, delay)
    mic = encode(echo + noise(len(echo), NOISE_DBFS))

    readings = [r for r in meter_call(mic, ai, misalign) if r.loud][1:]

    assert len(readings) >= 0.7 * UTTERANCE / FRAME  # the quietest syllables of 0.2 dip below
    echo_frames = [r for r in readings if r.verdict is Sound.ECHO]
    assert len(echo_frames) >= 0.98 * len(readings)
    assert all(r.residual_dbfs < FLOOR_DBFS and abs(r.correlation) > 0.9 for r in echo_frames)
    # Steady speakerphone echo is followed, not searched for again.
    assert sum(r.search is Search.TRACKED for r in readings) >= 0.95 * len(readings)


@pytest.mark.parametrize(("delay", "misalign"), [(0, 0), (323, -320), (2000, 320), (1203, 77)])
def test_echo_path_of_broadband_audio_is_measured(delay: int, misalign: int) -> None:
    """Audio with one lag that fits (unlike a tone) gives the path itself."""
    ai = encode(noise(UTTERANCE, -20.0, seed=1))
    echo = echo_of(ai, 0.5, delay)
    mic = encode(echo + noise(len(echo), NOISE_DBFS))

    readings = meter_call(mic, ai, misalign)[delay // FRAME + 1 :]

    assert {r.verdict for r in readings} == {Sound.ECHO}
    assert {r.echo_delay_samples for r in readings} == {LEAD - delay - misalign}
    assert all(r.echo_gain == pytest.approx(0.5, abs=0.02) for r in readings)


@pytest.mark.parametrize("tone", [1, 7, 20])
def test_echo_between_samples_needs_the_short_filter(tone: int) -> None:
    """A delay of 40.5 samples (linear interpolation, a lowpass as a phone's path is)."""
    ai = ai_speaking(tone)
    played = linear(ai)
    echo = 0.6 * 0.5 * (delayed(played, 40) + delayed(played, 41))
    mic = encode(echo + noise(len(echo), NOISE_DBFS))

    readings = [r for r in meter_call(mic, ai) if r.loud][1:]

    assert sum(r.verdict is Sound.ECHO for r in readings) >= 0.98 * len(readings)
    if tone == 7:  # 1 kHz: half a sample is a sixteenth of a cycle, which one tap leaves
        one_tap = verdicts(meter_call(mic, ai, meter=VoiceMeter(VoiceConfig(fit_taps=1))))
        assert one_tap[Sound.VOICE] > 0.5 * len(readings)


def test_tracked_path_follows_jitter_and_is_found_again_when_it_moves() -> None:
    """Broadband AI audio, so that only the true lag fits (a tone fits at many)."""
    ai = encode(noise(BEFORE + UTTERANCE + AFTER, -20.0, seed=2))
    first, second = echo_of(ai, 0.5, 80 * 8 + 3), echo_of(ai, 0.5, 200 * 8 + 1)
    cut = BEFORE + UTTERANCE // 2
    echo = np.concatenate([first[:cut], second[cut:]])
    mic = encode(echo + noise(len(echo), NOISE_DBFS))

    meter = VoiceMeter()
    readings = meter_call(mic, ai, jitter=(0, 13, -7, 30, -24), meter=meter)
    loud = [r for r in readings if r.loud]

    assert sum(r.verdict is Sound.ECHO for r in loud) >= 0.98 * (len(loud) - 1)
    full = [i for i, r in enumerate(readings) if r.search is Search.FULL]
    # Once when the echo starts, and where the path moves (a frame straddles the move).
    assert len(full) <= 4
    assert any(abs(i - cut // FRAME) <= 1 for i in full)
    assert meter.tracked_lag == readings[-1].echo_delay_samples


@pytest.mark.parametrize(
    ("tone", "gain", "delay"), [(1, 0.3, 3), (2, 0.4, 1203), (7, 0.6, 323), (30, 0.5, 2000)]
)
def test_double_talk_at_the_level_of_the_echo_is_voice(tone: int, gain: float, delay: int) -> None:
    ai = ai_speaking(tone)
    echo = echo_of(ai, gain, delay)
    speech = caller_speaking(BEFORE + delay, level_of_echo(echo))
    mic = encode(echo + speech + noise(len(echo), NOISE_DBFS))

    counts = verdicts(meter_call(mic, ai, misalign=160))

    assert counts[Sound.VOICE] >= 0.95 * counts.total()


@pytest.mark.parametrize(("tone", "gain"), [(2, 0.4), (2, 0.8), (7, 0.6), (12, 0.8), (30, 0.4)])
def test_quiet_caller_under_loud_echo_is_heard_above_the_floor(tone: int, gain: float) -> None:
    """Speech 10 dB below the echo: judged as if alone, within a dB or two of the floor.

    The fit may take a little of the caller's voice with the echo (a tone at
    one of their harmonics), so frames where their own voice is barely above
    the floor can read ECHO; it never makes a voice out of echo.
    """
    ai = ai_speaking(tone)
    echo = echo_of(ai, gain, 1203)
    speech = caller_speaking(BEFORE + 1203, level_of_echo(echo) - 10.0)
    mic = encode(echo + speech + noise(len(echo), NOISE_DBFS))

    readings = meter_call(mic, ai, misalign=-200)
    own = frame_levels(speech)

    clear = [r for r, level in zip(readings, own, strict=True) if level >= FLOOR_DBFS + 2]
    below = [r for r, level in zip(readings, own, strict=True) if level < FLOOR_DBFS - 2]
    assert all(r.verdict is Sound.VOICE for r in clear)
    assert not any(r.verdict is Sound.VOICE for r in below)


@pytest.mark.parametrize(("level", "gain"), [(-30.0, 0.0), (-20.0, 0.0), (-20.0, 0.5), (-8.0, 0.5)])
def test_broadband_noise_is_the_callers_side(level: float, gain: float) -> None:
    ai = ai_speaking(7)
    echo = echo_of(ai, gain, 323)
    mic = encode(echo + noise(len(echo), level))

    readings = meter_call(mic, ai)

    assert verdicts(readings) == {Sound.VOICE: len(readings)}


def test_reference_too_quiet_to_be_the_echo_is_not_fitted() -> None:
    """A reference shaped like the frame, but 26 dB under it, is no echo path."""
    speech = caller_speaking(0, -20.0)[:UTTERANCE]
    mic = encode(speech)
    ai = encode(0.05 * speech)

    readings = meter_call(mic, ai)

    assert set(verdicts(readings)) == {Sound.VOICE}
    assert any(r.search is Search.FULL for r in readings)
    assert all(abs(r.echo_gain) <= VoiceConfig().max_echo_gain for r in readings)


def test_a_reference_shorter_than_the_frame_is_not_searched() -> None:
    frame = encode(caller_speaking(0, -20.0)[1000 : 1000 + FRAME])
    reading = VoiceMeter().feed(frame, frame[:100])
    assert (reading.verdict, reading.search, reading.echo_delay_samples) == (
        Sound.VOICE,
        Search.NONE,
        None,
    )
    assert reading.residual_dbfs == reading.level_dbfs


@pytest.mark.parametrize(
    "changes",
    [
        {"floor_dbfs": 0.0},
        {"floor_dbfs": -120.0},
        {"echo_min_correlation": 1.0},
        {"echo_min_correlation": 0.0},
        {"echo_min_correlation": 0.95},  # above track_min_correlation
        {"max_echo_gain": 0.0},
        {"track_window_samples": -1},
        {"track_window_samples": 1.5},
        {"fit_taps": 2},
        {"fit_taps": 0},
    ],
)
def test_config_is_validated(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="VoiceConfig"):
        VoiceConfig(**changes)  # type: ignore[arg-type]


def test_a_quiet_frame_never_asks_for_its_reference() -> None:
    def reference() -> bytes:
        raise AssertionError("a quiet frame needs no reference")

    assert VoiceMeter().feed(b"\xff" * 160, reference).verdict is Sound.SILENT


def test_a_loud_frame_is_judged_against_the_reference_it_asks_for() -> None:
    ai = signals.tone_audio(3, 0, 160 * 30, 160 * 30)
    asked: list[bool] = []

    def reference() -> bytes:
        asked.append(True)
        return ai

    frame = ai[160 * 10 : 160 * 11]
    assert VoiceMeter().feed(frame, reference).verdict is Sound.ECHO
    assert asked == [True]


@pytest.mark.parametrize("level_dbfs", [-60.0, -45.0, -38.0, -30.0, -10.0])
def test_a_frame_the_byte_scan_calls_quiet_is_silent_to_the_meter(level_dbfs: float) -> None:
    meter = VoiceMeter()
    amplitude = 32768 * 10 ** (level_dbfs / 20)
    frame = mulaw.encode([round(amplitude * math.sin(n / 3)) for n in range(160)])
    if meter.quiet(frame):
        assert meter.feed(frame).verdict is Sound.SILENT
    # The scan goes by the peak (here the amplitude), below the -35 dBFS floor.
    assert meter.quiet(frame) == (level_dbfs < -35)
