"""What the echo-aware voice meter costs per 20 ms caller frame: prints figures, never asserts.

Feeds `VoiceMeter` a long synthetic speakerphone call per case (the AI's
tone, its echo in the caller's microphone at gain 0.5 and 123 ms + 5 samples,
the caller's speech), each frame with the AI audio from 300 ms before its
capture to 60 ms after (2880 + 160 samples), and times every `feed`.

    .venv/bin/python benchmarks/bench_voice.py [--frames 3000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcore.voice import VoiceConfig, VoiceMeter
from simulators import mulaw, signals

FRAME = signals.FRAME_BYTES
LEAD = 300 * signals.BYTES_PER_MS
REFERENCE = LEAD + FRAME + 60 * signals.BYTES_PER_MS
DELAY = 123 * signals.BYTES_PER_MS + 5
ENCODED = np.frombuffer(mulaw.encode(range(-32768, 32768)), dtype=np.uint8)


def encode(samples: np.ndarray) -> bytes:
    return ENCODED[np.clip(np.rint(samples), -32768, 32767).astype(np.int64) + 32768].tobytes()


def linear(data: bytes) -> np.ndarray:
    return np.array(mulaw.decode(data), dtype=np.float64)


@dataclass(frozen=True)
class Case:
    name: str
    echo_gain: float = 0.5
    speech: bool = False  # the caller talks, at the level of the echo (or -20 dBFS alone)
    noise_dbfs: float = -55.0
    half_sample: bool = False  # the echo is delayed by DELAY + 0.5 samples
    ai_silent: bool = False
    config: VoiceConfig = field(default_factory=VoiceConfig)


CASES = [
    Case("silent frames", echo_gain=0.0, noise_dbfs=-50.0),
    Case("echo, tracked"),
    Case("echo, full search", config=VoiceConfig(track_window_samples=0)),
    Case("echo half a sample late", half_sample=True),
    Case("double talk (equal level)", speech=True),
    Case("caller alone, AI silent", echo_gain=0.0, speech=True, ai_silent=True),
]


def call(case: Case, frames: int) -> tuple[bytes, bytes]:
    """(AI audio, caller's microphone), both mu-law, `frames` frames long plus margins."""
    n = (frames + 2) * FRAME + REFERENCE
    ai = signals.tone_audio(7, 0, n, 10 * n)  # long enough that its end ramp is never heard
    played = linear(ai)
    path = np.zeros(n)
    path[DELAY:] = played[: n - DELAY]
    if case.half_sample:
        path[DELAY + 1 :] = 0.5 * (played[: n - DELAY - 1] + played[1 : n - DELAY])
    mic = case.echo_gain * path
    if case.speech:
        speech = linear(signals.speech_audio(0, n, 10 * n))
        level = case.echo_gain * rms(played) if case.echo_gain else 0.1 * 32768
        mic += speech * level / rms(speech)
    mic += np.random.default_rng(0).normal(0, 32768 * 10 ** (case.noise_dbfs / 20), n)
    return (mulaw.silence(n) if case.ai_silent else ai), encode(mic)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples * samples)))


def run(meter: VoiceMeter, ai: bytes, mic: bytes, frames: int) -> tuple[list[float], Counter[str]]:
    """Microseconds per `feed`, and what it said."""
    costs = []
    said: Counter[str] = Counter()
    for i in range(frames):
        start = LEAD + i * FRAME  # the first reference starts at the timeline's start
        frame = mic[start : start + FRAME]
        reference = ai[start - LEAD : start - LEAD + REFERENCE]
        t0 = time.perf_counter_ns()
        reading = meter.feed(frame, reference)
        costs.append((time.perf_counter_ns() - t0) / 1000)
        said[f"{reading.verdict}/{reading.search}"] += 1
    return costs, said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    frames = parser.parse_args().frames

    print(f"{frames} frames of 20 ms per case; reference {REFERENCE} samples")
    print(f"{'case':<28}{'median us':>10}{'p99 us':>9}  verdict/search")
    for case in CASES:
        ai, mic = call(case, frames)
        run(VoiceMeter(case.config), ai, mic, min(frames, 200))  # warm up
        costs, said = run(VoiceMeter(case.config), ai, mic, frames)
        p99 = statistics.quantiles(costs, n=100)[98]
        summary = ", ".join(f"{k} {v}" for k, v in said.most_common())
        print(f"{case.name:<28}{statistics.median(costs):>10.1f}{p99:>9.1f}  {summary}")


if __name__ == "__main__":
    main()
