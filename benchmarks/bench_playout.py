"""How much the playout truth costs per 20 ms frame: prints medians, never asserts.

Drives PlayoutTracker as the bridge does for one call (bursty model deltas,
polls at each deadline, mark echoes as a real-time player would send them,
a barge-in now and then) on a simulated clock, and times it.

    .venv/bin/python benchmarks/bench_playout.py [--frames 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playout import AudioFrame, PlayoutConfig, PlayoutTracker


def one_run(frames: int, seed: int) -> tuple[float, int, int]:
    """Seconds of CPU spent in the tracker, frames sent, marks echoed."""
    rng = random.Random(seed)
    tracker = PlayoutTracker(PlayoutConfig())
    now = 0.0
    sent_frames = echoed = 0
    # The phone: (time the audio before this mark finishes playing, mark name)
    echoes: deque[tuple[float, str]] = deque()
    play_end = 0.0
    spent = 0.0
    response = 0
    while sent_frames < frames:
        response += 1
        rid, iid = f"resp_{response}", f"item_{response}"
        t0 = time.perf_counter()
        tracker.response_started(rid, now)
        for _ in range(rng.randint(10, 60)):  # 1-15 s of audio in 40-240 ms deltas
            tracker.audio_delta(rid, iid, b"\x55" * 8 * rng.choice((40, 80, 120, 240)), now)
        tracker.audio_done(rid, iid, now)
        tracker.response_done(rid, now)
        spent += time.perf_counter() - t0
        barge_in_at = now + rng.uniform(0.5, 8.0) if rng.random() < 0.3 else None
        while True:
            t0 = time.perf_counter()
            for out in tracker.poll(now):
                if isinstance(out, AudioFrame):
                    sent_frames += 1
                    play_end = max(play_end, now) + len(out.payload) / 8000
                else:
                    echoes.append((play_end, out.name))
            while echoes and echoes[0][0] <= now:
                tracker.mark_echoed(echoes.popleft()[1], now)
                echoed += 1
            tracker.is_speaking(now)
            deadline = tracker.next_deadline()
            if barge_in_at is not None and now >= barge_in_at:
                tracker.cancel(now)
                echoes.clear()
                play_end = now
                spent += time.perf_counter() - t0
                break
            spent += time.perf_counter() - t0
            if deadline is None or (not echoes and not tracker.is_speaking(now)):
                break
            now = max(now + 0.001, min(deadline, echoes[0][0] if echoes else deadline))
        now += 0.5
    return spent, sent_frames, echoed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    per_frame_us = []
    for i in range(args.repeat):
        spent, sent, echoed = one_run(args.frames, seed=i)
        per_frame_us.append(spent / sent * 1e6)
        print(f"run {i + 1}: {sent} frames, {echoed} echoes, {spent:.2f} s CPU, "
              f"{per_frame_us[-1]:.2f} us/frame")  # fmt: skip
    median = statistics.median(per_frame_us)
    print(f"median {median:.2f} us per 20 ms frame (everything included)")
    # 50 frames a second per call: the share of one core per call.
    print(f"= {median * 50 / 1e6 * 100:.4f} % of one core per call, "
          f"~{1e6 / (median * 50):.0f} calls per core for the playout truth alone")  # fmt: skip


if __name__ == "__main__":
    main()
