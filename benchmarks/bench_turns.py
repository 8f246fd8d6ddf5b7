"""The caller's sounds while the AI speaks: false stops, missed interruptions, stop latency.

    .venv/bin/python benchmarks/bench_turns.py [--root /work/base-25] [--server uvicorn] [--runs 1]
        [--only "uh-huh 450" --only "mm-hmm 450" --times 8]

Serves the project (a fresh SQLite file; from the checkout `--root` when given,
a before) with no greeting, and places one call per utterance over a 60 ms
one-way link with up to 20 ms of jitter each way, `CONCURRENCY` calls at a
time, every Realtime session on the same script. The caller asks a question,
the AI answers with a 5 s reply (tone 1), and 1.5-2.5 s into hearing it the
caller makes one of 20 sounds: 10 that are not interruptions ("uh-huh", a
cough, line noise...) and 10 that are. The answer to an interruption is a
second, 1 s reply (tone 2).

Per utterance it prints, from the caller's own timeline (positions the
stand-in stamps into the answer audio): for a non-interruption whether the
answer was stopped (a FALSE STOP: under 98 % of it heard, truncated in the
model's memory, or answered with tone 2) and the total gap heard in it; for an
interruption whether the answer played on to its end (MISSED), the stop
latency (the sound's first sample to the last frame of the answer heard)
and whether the caller was answered. Then "speech while the AI is silent": the
caller asks with nothing playing; the end of the question to the first frame
of the answer heard. With `--runs N` everything is repeated N times and the
summary gives the median across runs, and the gaps of each sound over them
all. `--only NAME` (repeatable) places only those sounds, and no silent
asks; `--times N` places each sound N times per run (the tail of one sound's
gaps). A checkout that records turn verdicts has each call's verdicts printed
(PlayoutLog "turn_verdict").
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulators.stack import Server
    from simulators.twilio.script import SoundKind

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

ANSWER_MS = 5000
SECOND_MS = 1000
CONCURRENCY = 5
SILENT_CALLS = 10
HEARD_ENOUGH = 0.98
# The sound begins this far into hearing the answer (ms, drawn per call).
SOUND_AFTER_MS = (1500, 2500)
# After the sound: long enough for the rest of the answer, or for the reply to it.
LISTEN_AFTER_MS = 5500
QUESTION = ("When are you open tomorrow?", 700)

# name: (sound kind, words, ms)
NOT_INTERRUPTIONS: dict[str, tuple[SoundKind, str, int]] = {
    "uh-huh 300": ("speech", "Uh-huh.", 300),
    "uh-huh 350": ("speech", "Uh-huh.", 350),
    "uh-huh 450": ("speech", "Uh-huh.", 450),
    "yeah 300": ("speech", "Yeah.", 300),
    "mm-hmm 400": ("speech", "Mm-hmm.", 400),
    "mm-hmm 450": ("speech", "Mm-hmm.", 450),
    "okay 350": ("speech", "Okay.", 350),
    "cough 150": ("cough", "", 150),
    "cough 200": ("cough", "", 200),
    "line noise 300": ("noise", "", 300),
}
INTERRUPTIONS: dict[str, tuple[SoundKind, str, int]] = {
    "wait, stop, I need...": ("speech", "Wait, stop, I need to change my order.", 1400),
    "stop": ("speech", "Stop.", 400),
    "hold on": ("speech", "Hold on.", 600),
    "no, that's not what...": ("speech", "No, that's not what I asked.", 1200),
    "sorry, can you repeat": ("speech", "Sorry, can you repeat that?", 1000),
    "wait": ("speech", "Wait.", 700),
    "actually I wanted...": ("speech", "Actually I wanted to ask about delivery.", 1600),
    "excuse me": ("speech", "Excuse me.", 700),
    "stop, stop": ("speech", "Stop, stop.", 800),
    "no no": ("speech", "No no.", 600),
}


@dataclass
class Outcome:
    """One call's figures, from the caller's timeline (ms unless named otherwise)."""

    name: str
    interruption: bool
    after_ms: int
    heard_ms: float
    gap_total_ms: float
    truncated: bool
    answered: bool
    """Tone 2 (the second reply) was heard."""
    played_to_end: bool
    stop_latency_ms: float | None
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    """The server's turn verdicts (PlayoutLog "turn_verdict" details), if it records them."""
    resumed: int = 0
    """Times the answer was resumed after a pause (PlayoutLog "answer_resumed")."""

    @property
    def false_stop(self) -> bool:
        return not self.interruption and (
            self.heard_ms < HEARD_ENOUGH * ANSWER_MS or self.truncated or self.answered
        )

    @property
    def missed(self) -> bool:
        return self.interruption and self.played_to_end


def call_records(call_sid: str) -> tuple[str, list[dict[str, Any]], int] | None:
    """(model session id, turn verdicts, answers resumed) once the server wrote the call's
    end; None before. A checkout before turn verdicts has none of either."""
    from calls.models import CallSession, PlayoutLog

    row = CallSession.objects.filter(call_sid=call_sid, ended_at__isnull=False).first()
    if row is None:
        return None
    verdicts = list(
        PlayoutLog.objects.filter(call=row, kind="turn_verdict")
        .order_by("offset_ms", "id")
        .values_list("details", flat=True)
    )
    resumed = PlayoutLog.objects.filter(call=row, kind="answer_resumed").count()
    return row.model_session_id, verdicts, resumed


async def place(stack: Any, caller_script: Any, seed: int) -> tuple[Any, Any, list[Any], int]:
    """(the caller's timeline, its Realtime session or None, its turn verdicts, resumes)."""
    from asgiref.sync import sync_to_async

    from simulators.link import LinkProfile

    link = LinkProfile(60, 20)
    caller = stack.caller(caller_script, uplink=link, downlink=link, link_seed=seed)
    try:
        timeline = await caller.run(timeout_s=45)
    finally:
        await caller.aclose()
    deadline = time.monotonic() + 20
    records = None
    while records is None and time.monotonic() < deadline:
        records = await sync_to_async(call_records)(caller.call_sid)
        if records is None:
            # Another process writes the call's end, with no event to await: poll, bounded.
            await asyncio.sleep(0.1)
    session_id, verdicts, resumed = records or ("", [], 0)
    session = next((s for s in stack.realtime.sessions if s.session["id"] == session_id), None)
    return timeline, session, verdicts, resumed


def sounding(kind: SoundKind, text: str, ms: int, after_ms: int) -> Any:
    from simulators.twilio import CallerScript, Silence, SpeakWhenHeard, Speech

    words, question_ms = QUESTION
    return CallerScript(
        segments=(
            Silence(300),
            Speech(question_ms, text=words),
            SpeakWhenHeard(tone=1, after_ms=after_ms, speech_ms=ms, text=text, sound=kind),
            Silence(LISTEN_AFTER_MS),
        ),
        hangup="stop",
    )


async def utterance(
    stack: Any, name: str, interruption: bool, seed: int, gate: asyncio.Semaphore
) -> Outcome:
    kind, text, ms = (INTERRUPTIONS if interruption else NOT_INTERRUPTIONS)[name]
    after_ms = random.Random(seed).randrange(SOUND_AFTER_MS[0], SOUND_AFTER_MS[1] + 1, 20)
    async with gate:
        caller_script = sounding(kind, text, ms, after_ms)
        timeline, session, verdicts, resumed = await place(stack, caller_script, seed)
    heard = timeline.answer_heard(1, min_gap_ms=1)
    sound = timeline.sounds[-1]
    latency = None
    if heard.last_heard_at is not None and len(timeline.sounds) > 1:
        latency = (heard.last_heard_at - sound.started_at) * 1000.0
    truncated = session is not None and any(
        r.event.get("type") == "conversation.item.truncate" for r in session.recording.received
    )
    return Outcome(
        name=name,
        interruption=interruption,
        after_ms=after_ms,
        heard_ms=heard.heard_ms,
        gap_total_ms=heard.gap_total_ms,
        truncated=truncated,
        answered=timeline.heard_ms_by_tone().get(2, 0.0) > 0,
        played_to_end=(heard.last_position_ms or 0.0) >= ANSWER_MS - 40,
        stop_latency_ms=latency,
        verdicts=verdicts,
        resumed=resumed,
    )


async def silent_ask(stack: Any, seed: int, gate: asyncio.Semaphore) -> float | None:
    """The end of the caller's question to the first frame of the answer heard (ms)."""
    from simulators.twilio import CallerScript, Silence, Speech

    words, question_ms = QUESTION
    caller_script = CallerScript(
        segments=(Silence(300), Speech(question_ms, text=words), Silence(2500)),
        hangup="stop",
    )
    async with gate:
        timeline, _, _, _ = await place(stack, caller_script, seed)
    first = timeline.answer_heard(1).first_heard_at
    ended = timeline.sounds[0].ended_at if timeline.sounds else None
    return None if first is None or ended is None else (first - ended) * 1000.0


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def describe(verdict: dict[str, Any]) -> str:
    """A turn verdict in a few words: what, what settled it, when after the onset."""
    paused = " paused" if verdict.get("paused") else ""
    return (
        f"{verdict.get('verdict')}/{verdict.get('decided_by')} "
        f"at {verdict.get('decision_ms')} ms{paused}"
    )


def print_run(run: int, outcomes: list[Outcome], silent: list[float | None]) -> dict[str, float]:
    print(f"\nrun {run + 1}")
    print(
        f"{'utterance':<23} {'kind':<6} {'at ms':>5} {'heard ms':>8} {'gap ms':>6} "
        f"{'trunc':>5} {'tone 2':>6} {'stop ms':>7}  {'result':<10} verdicts"
    )
    for o in outcomes:
        if o.interruption:
            result = "MISSED" if o.missed else "stopped"
        else:
            result = "FALSE STOP" if o.false_stop else "ok"
        verdicts = ", ".join(describe(v) for v in o.verdicts if isinstance(v, dict))
        if o.resumed:
            verdicts += f"; resumed {o.resumed}x"
        print(
            f"{o.name:<23} {'int' if o.interruption else 'not':<6} {o.after_ms:>5} "
            f"{o.heard_ms:>8.0f} {o.gap_total_ms:>6.0f} {'yes' if o.truncated else 'no':>5} "
            f"{'yes' if o.answered else 'no':>6} "
            f"{fmt(o.stop_latency_ms if o.interruption else None):>7}  {result:<10} "
            f"{verdicts or '-'}",
            flush=True,
        )
    interruptions = [o for o in outcomes if o.interruption]
    others = [o for o in outcomes if not o.interruption]
    latencies = [
        o.stop_latency_ms for o in interruptions if not o.missed and o.stop_latency_ms is not None
    ]
    gaps = [o.gap_total_ms for o in others]
    waits = [w for w in silent if w is not None]
    figures = {
        "false stops": float(sum(o.false_stop for o in others)),
        "missed interruptions": float(sum(o.missed for o in interruptions)),
        "answered interruptions": float(sum(o.answered for o in interruptions)),
        "gaps p50": pct(gaps, 50) if gaps else float("nan"),
        "gaps max": max(gaps) if gaps else float("nan"),
        "stop latency p50": pct(latencies, 50) if latencies else float("nan"),
        "stop latency p95": pct(latencies, 95) if latencies else float("nan"),
        "stop latency max": max(latencies) if latencies else float("nan"),
        "silent answer p50": pct(waits, 50) if waits else float("nan"),
        "silent answer p95": pct(waits, 95) if waits else float("nan"),
        "silent calls answered": float(len(waits)),
    }
    print(
        "speech while the AI is silent (question end to answer heard, ms): "
        + ", ".join(fmt(w) for w in silent)
    )
    figures["sounds not interruptions"] = float(len(others))
    figures["interruptions"] = float(len(interruptions))
    figures["silent calls"] = float(len(silent))
    print_summary(figures, f"run {run + 1}")
    return figures


def print_summary(figures: dict[str, float], label: str) -> None:
    f = figures
    print(f"summary ({label})")
    print(f"  false stops            {f['false stops']:.0f}/{f['sounds not interruptions']:.0f}")
    print(f"  missed interruptions   {f['missed interruptions']:.0f}/{f['interruptions']:.0f}")
    print(
        f"  stop latency ms        p50 {f['stop latency p50']:.0f}  "
        f"p95 {f['stop latency p95']:.0f}  max {f['stop latency max']:.0f}"
    )
    print(f"  gaps in answer ms      p50 {f['gaps p50']:.0f}  max {f['gaps max']:.0f}")
    print(f"  answered interruptions {f['answered interruptions']:.0f}/{f['interruptions']:.0f}")
    print(
        f"  AI silent: question end to answer heard ms  p50 {f['silent answer p50']:.0f}  "
        f"p95 {f['silent answer p95']:.0f}  "
        f"({f['silent calls answered']:.0f}/{f['silent calls']:.0f} answered)",
        flush=True,
    )


def print_gaps_by_sound(outcomes: list[Outcome]) -> None:
    """Each sound that is not an interruption: its gaps over every run."""
    by_name: dict[str, list[float]] = {}
    for o in outcomes:
        if not o.interruption:
            by_name.setdefault(o.name, []).append(o.gap_total_ms)
    if not by_name:
        return
    print("gaps in answer ms, each sound over every run (min / median / max, over 200 ms)")
    for name, gaps in by_name.items():
        over = sum(gap > 200 for gap in gaps)
        print(
            f"  {name:<23} {min(gaps):>4.0f} / {statistics.median(gaps):>4.0f} / "
            f"{max(gaps):>4.0f}   {over} of {len(gaps)} over 200",
            flush=True,
        )


async def bench(
    runs: int,
    server: Server,
    database_url: str,
    root: Path | None,
    only: list[str] | None = None,
    times: int = 1,
) -> None:
    from simulators.realtime import RealtimeScript, Reply
    from simulators.stack import REFERENCE, LocalStack, frozen_heap

    script = RealtimeScript(
        replies=(
            Reply(ANSWER_MS, "We open at nine tomorrow and close at six in the evening."),
            Reply(SECOND_MS, "Of course, what would you like?"),
        )
    )
    project = REFERENCE if root is None else REFERENCE.checkout(root)
    async with LocalStack(
        database_url=database_url,
        server=server,
        env={"AGENT_GREETING": ""},
        default_script=script,
        project=project,
    ) as stack:
        print(f"serving {project.root} under {server}; {runs} run(s)", flush=True)
        gate = asyncio.Semaphore(CONCURRENCY)
        every: list[dict[str, float]] = []
        placed: list[Outcome] = []
        cases = [(name, False) for name in NOT_INTERRUPTIONS] + [
            (name, True) for name in INTERRUPTIONS
        ]
        if only:
            cases = [case for case in cases if case[0] in only]
        cases = [case for case in cases for _ in range(times)]
        silent_calls = 0 if only else SILENT_CALLS
        for run in range(runs):
            base = run * 1000
            sounds = [
                utterance(stack, name, interruption, base + i, gate)
                for i, (name, interruption) in enumerate(cases)
            ]
            asks = [silent_ask(stack, base + 500 + i, gate) for i in range(silent_calls)]
            with frozen_heap():  # no collection stalls the callers for 100 ms
                outcomes, silent = await asyncio.gather(
                    asyncio.gather(*sounds), asyncio.gather(*asks)
                )
            every.append(print_run(run, list(outcomes), list(silent)))
            placed += outcomes
        if runs > 1:
            medians = {key: statistics.median(f[key] for f in every) for key in every[0]}
            print()
            print_summary(medians, f"median of {runs} runs")
        print()
        print_gaps_by_sound(placed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="serve this checkout (a before)")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--only",
        action="append",
        choices=[*NOT_INTERRUPTIONS, *INTERRUPTIONS],
        help="place only this sound (repeatable); no silent asks",
    )
    parser.add_argument("--times", type=int, default=1, help="each sound this many times a run")
    args = parser.parse_args()
    if not 1 <= args.times <= 25:
        parser.error("--times: 1 to 25 (each call's seed is its place in the run, under 500)")
    root = args.root.resolve() if args.root else None
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/bench.sqlite3"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "config.dev_settings",
        }
        # The served checkout's own migrations make the schema its server expects.
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=root or PROJECT_ROOT,
            env=env,
            check=True,
        )
        os.environ["DATABASE_URL"] = database_url
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.dev_settings"
        import django

        django.setup()
        # Each caller's own story (sockets opened and closed) would bury the table.
        logging.getLogger("simulators").setLevel(logging.WARNING)
        asyncio.run(bench(args.runs, args.server, database_url, root, args.only, args.times))


if __name__ == "__main__":
    main()
