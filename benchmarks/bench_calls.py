"""Benchmark N concurrent simulated calls through the real stack, under Daphne and Uvicorn.

    .venv/bin/python benchmarks/bench_calls.py [--calls 40 --server both --repeat 3 --seconds 8]

Each repetition starts a fresh server child (LocalStack, Realtime simulator in
this process), makes one warm-up call, then runs `--calls` calls at once. Every
call: the AI greets; the caller talks over the greeting's playout tail (a
barge-in: the model finished sending, the audio is still playing); the model
answers; the caller stays silent and hangs up with `stop` after `--seconds`.
Every `--goodbye-every`-th model answer is a goodbye with `end_call`, so the
server ends that call once the goodbye has played.

Figures per run: the server process tree's CPU time (utime+stime from
/proc/<pid>/stat, children included) over the calls, its peak RSS (VmHWM),
barge-in reaction from the persisted `BargeInEvent` rows, and, from the
callers' timelines, underruns, barge-ins caught, truncate accuracy and goodbye
close lag. The summary quotes medians over repetitions: the machine is shared.

The database is a fresh temporary SQLite file, migrated here, unless
`--database-url` or `DATABASE_URL` names one (already migrated; rows are added).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.procstat import MachineTicks, tree_cpu_s, tree_peak_rss_mb  # noqa: E402
from simulators.realtime import RealtimeScript, Reply  # noqa: E402
from simulators.scenarios import GREETING  # noqa: E402
from simulators.stack import LocalStack, Server  # noqa: E402
from simulators.twilio import CallerScript, Silence, SpeakWhenHeard, Timeline  # noqa: E402

GREETING_MS = 4000
BARGE_IN_AFTER_MS = 2500  # into the greeting: the model finished sending it long before
SPEECH_MS = 700
ANSWER_MS = 2000
GOODBYE_TONE = 2
FULL_TOLERANCE_MS = 25  # as in calls.simulation


# --- What one call does ------------------------------------------------------------------


EXPECTED_ENDS = ("caller_hangup", "agent_hangup")


def realtime_script(index: int, goodbye_every: int) -> RealtimeScript:
    goodbye = goodbye_every > 0 and index % goodbye_every == goodbye_every - 1
    answer = "Your booking is confirmed. Goodbye!" if goodbye else "Sure, it is open until six."
    return RealtimeScript(
        replies=(Reply(GREETING_MS, GREETING), Reply(ANSWER_MS, answer, end_call=goodbye)),
        seed=index,  # varied delta sizes from call to call
    )


def caller_script(seconds: float) -> CallerScript:
    # The rest of the call after the greeting's start, the barge-in and the speech;
    # long enough for the answer (or goodbye) to play out whatever `seconds` says.
    rest_ms = max(round(seconds * 1000) - BARGE_IN_AFTER_MS - SPEECH_MS - 300, ANSWER_MS + 2500)
    return CallerScript(
        segments=(
            SpeakWhenHeard(tone=1, after_ms=BARGE_IN_AFTER_MS, speech_ms=SPEECH_MS),
            Silence(rest_ms),
        ),
        hangup="stop",
    )


# --- One repetition: the asyncio part -----------------------------------------------------


@dataclass
class Usage:
    cpu_s: float
    wall_s: float
    peak_rss_mb: float
    sim_cpu_s: float
    machine_busy_pct: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    loop_lag_max_at_s: float
    """When the worst loop stall happened, in s since the calls started."""
    started_at: float
    peak_cpu_pct: float
    """The server's highest CPU % of one core over any 0.5 s of the run."""
    peak_cpu_at_s: float
    """Monotonic time the calls started (the callers' timelines use the same clock)."""


@dataclass
class CallOutcome:
    call_sid: str
    timeline: Timeline | None
    error: str = ""


async def _call(stack: LocalStack, script: CallerScript, timeout_s: float) -> CallOutcome:
    caller = stack.caller(script)
    try:
        timeline = await caller.run(timeout_s=timeout_s)
    except Exception as exc:  # one failed call is a figure, not the end of the run
        return CallOutcome(caller.call_sid, None, f"{type(exc).__name__}: {exc}")
    finally:
        await caller.aclose()
    return CallOutcome(caller.call_sid, timeline)


async def _watch_loop_lag(lags: list[tuple[float, float]], interval_s: float = 0.01) -> None:
    """How late this process's event loop wakes up: the simulators' own scheduling delay.

    Appends (monotonic time, lag in ms); a stall here delays what the callers hear and send.
    """
    loop = asyncio.get_running_loop()
    while True:
        planned = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        lags.append((loop.time(), (loop.time() - planned) * 1000))


async def _sample_cpu(pid: int, samples: list[tuple[float, float]], every_s: float) -> None:
    """(monotonic time, server tree CPU s) every `every_s`: shows bursts an average hides."""
    loop = asyncio.get_running_loop()
    while True:
        samples.append((loop.time(), tree_cpu_s(pid)))
        await asyncio.sleep(every_s)


def peak_window(samples: list[tuple[float, float]], window_s: float) -> tuple[float, float]:
    """Highest CPU % of one core over any `window_s` between samples, and when it began."""
    best = (0.0, samples[0][0] if samples else 0.0)
    end = 0
    for start, (t0, cpu0) in enumerate(samples):
        end = max(end, start + 1)
        while end < len(samples) and samples[end][0] - t0 < window_s - 1e-3:
            end += 1
        if end == len(samples):
            break
        t1, cpu1 = samples[end]
        best = max(best, (100 * (cpu1 - cpu0) / (t1 - t0), t0))
    return best


async def _wait_sessions_closed(stack: LocalStack, first: int, timeout_s: float) -> None:
    # The server writes a call's last rows before it closes the model's socket.
    sessions = stack.realtime.sessions
    try:
        await stack.realtime.wait_for(lambda: all(s.closed for s in sessions[first:]), timeout_s)
    except TimeoutError:
        open_ = sum(not s.closed for s in sessions[first:])
        print(f"    warning: {open_} Realtime session(s) still open after {timeout_s:.0f} s")


async def run_calls(
    server: Server, args: argparse.Namespace, database_url: str, log_path: Path
) -> tuple[Usage, list[CallOutcome]]:
    env = {"AGENT_GREETING": GREETING, "LOG_LEVEL": args.log_level}
    if not args.debug:
        env |= {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": secrets.token_urlsafe(40)}
    timeout_s = args.seconds + 30
    async with LocalStack(
        database_url=database_url, server=server, env=env, log_path=log_path
    ) as stack:
        pid = stack.pid
        assert pid is not None
        # Lazy imports, the shared client and first connections stay out of the figures.
        stack.queue_script(RealtimeScript(replies=(Reply(400, GREETING),)))
        warm = await _call(stack, CallerScript(segments=(Silence(1200),), hangup="stop"), 30)
        if warm.error:
            print(f"    warning: warm-up call failed: {warm.error}")
        await _wait_sessions_closed(stack, 0, 10)

        first = len(stack.realtime.sessions)
        for index in range(args.calls):
            stack.queue_script(realtime_script(index, args.goodbye_every))
        script = caller_script(args.seconds)
        lags: list[tuple[float, float]] = []
        cpu_samples: list[tuple[float, float]] = []
        watchers = [
            asyncio.create_task(_watch_loop_lag(lags)),
            asyncio.create_task(_sample_cpu(pid, cpu_samples, 0.1)),
        ]
        cpu_before, sim_before = tree_cpu_s(pid), _own_cpu_s()
        machine_before, started = MachineTicks.read(), time.monotonic()
        outcomes = await asyncio.gather(
            *(_call(stack, script, timeout_s) for _ in range(args.calls))
        )
        await _wait_sessions_closed(stack, first, 15)
        wall_s = time.monotonic() - started
        cpu_s, sim_s = tree_cpu_s(pid) - cpu_before, _own_cpu_s() - sim_before
        machine_busy = MachineTicks.read().busy_pct_since(machine_before)
        for watcher in watchers:
            watcher.cancel()
        peak_pct, peak_at = peak_window(cpu_samples, 0.5)
        worst = max(lags, key=lambda sample: sample[1], default=(started, 0.0))
        usage = Usage(
            cpu_s=cpu_s,
            wall_s=wall_s,
            peak_rss_mb=tree_peak_rss_mb(pid),
            sim_cpu_s=sim_s,
            machine_busy_pct=machine_busy,
            loop_lag_p99_ms=percentile([lag for _, lag in lags], 99),
            loop_lag_max_ms=worst[1],
            loop_lag_max_at_s=worst[0] - started,
            started_at=started,
            peak_cpu_pct=peak_pct,
            peak_cpu_at_s=peak_at - started,
        )
    return usage, outcomes


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


# --- Figures from the timelines and the rows ----------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class RunFigures:
    server: str
    repeat: int
    usage: Usage
    calls: int
    failed: int = 0
    call_s: float = 0.0
    """Sum of the calls' lengths, stream start to close."""
    reaction_ms: list[float] = field(default_factory=list)
    underruns: int = 0
    calls_with_underruns: int = 0
    worst_gap_ms: float = 0.0
    underrun_notes: list[str] = field(default_factory=list)
    barge_ins_caught: int = 0
    barge_ins_extra: int = 0
    answers_heard_in_full: int = 0
    truncate_err_ms: list[float] = field(default_factory=list)
    goodbyes: int = 0
    goodbye_lag_ms: list[float] = field(default_factory=list)

    @property
    def cpu_pct(self) -> float:
        return 100 * self.usage.cpu_s / self.usage.wall_s

    @property
    def cpu_ms_per_call_s(self) -> float:
        return 1000 * self.usage.cpu_s / self.call_s if self.call_s else float("nan")


def judge_run(server: str, repeat: int, usage: Usage, outcomes: list[CallOutcome]) -> RunFigures:
    # Django is configured by main() before any run; the ORM is used from sync code only.
    from calls.models import CallSession

    rows = {
        call.call_sid: call
        for call in CallSession.objects.filter(
            call_sid__in=[o.call_sid for o in outcomes]
        ).prefetch_related("barge_ins")
    }
    figures = RunFigures(server, repeat, usage, len(outcomes))
    for outcome in outcomes:
        timeline = outcome.timeline
        call = rows.get(outcome.call_sid)
        # A call refused or broken on the server still has a timeline: its end says so.
        if timeline is None or call is None or call.end_reason not in EXPECTED_ENDS:
            figures.failed += 1
            continue
        if timeline.stream_started_at is not None and timeline.closed_at is not None:
            figures.call_s += timeline.closed_at - timeline.stream_started_at
        figures.underruns += len(timeline.underruns)
        figures.calls_with_underruns += bool(timeline.underruns)
        for gap in timeline.underruns:
            figures.worst_gap_ms = max(figures.worst_gap_ms, gap.gap_ms)
            into_ms = (gap.at - timeline.tone_started_at.get(gap.tone, gap.at)) * 1000
            figures.underrun_notes.append(
                f"{gap.gap_ms:.0f} ms gap {into_ms:.0f} ms into response {gap.tone}, "
                f"+{gap.at - usage.started_at:.2f} s into the run"
            )
        heard = timeline.heard_ms_by_tone()
        figures.answers_heard_in_full += heard.get(2, 0.0) >= ANSWER_MS - FULL_TOLERANCE_MS
        barge_ins = list(call.barge_ins.all())
        figures.reaction_ms += [event.reaction_ms for event in barge_ins]
        if barge_ins and timeline.clears:
            figures.barge_ins_caught += 1
            figures.barge_ins_extra += len(barge_ins) - 1
            if barge_ins[0].audio_end_ms is not None:
                figures.truncate_err_ms.append(abs(barge_ins[0].audio_end_ms - heard.get(1, 0.0)))
        if call.end_reason == "agent_hangup":
            figures.goodbyes += 1
            last = timeline.last_heard(GOODBYE_TONE)
            if last is not None and timeline.closed_at is not None:
                figures.goodbye_lag_ms.append((timeline.closed_at - last) * 1000)
    return figures


def progress_line(f: RunFigures) -> str:
    u = f.usage
    lines = [
        f"  {f.server} #{f.repeat}: {f.calls} calls in {u.wall_s:.1f} s, {f.failed} failed; "
        f"server CPU {u.cpu_s:.2f} s ({f.cpu_pct:.0f}% of a core, "
        f"{f.cpu_ms_per_call_s:.1f} ms per call-second), peak RSS {u.peak_rss_mb:.0f} MB; "
        f"busiest 0.5 s: {u.peak_cpu_pct:.0f}% of a core at +{u.peak_cpu_at_s:.1f} s",
        f"    barge-ins caught {f.barge_ins_caught}/{f.calls} (+{f.barge_ins_extra} extra), "
        f"reaction median {median(f.reaction_ms):.2f} ms, p95 "
        f"{percentile(f.reaction_ms, 95):.2f} ms; truncate error median "
        f"{median(f.truncate_err_ms):.0f} ms, max {max(f.truncate_err_ms, default=0):.0f} ms",
        f"    underruns {f.underruns} in {f.calls_with_underruns} calls (worst gap "
        f"{f.worst_gap_ms:.0f} ms); answers heard in full {f.answers_heard_in_full}/{f.calls}; "
        f"goodbyes {f.goodbyes}, close lag median {median(f.goodbye_lag_ms):.0f} ms, max "
        f"{max(f.goodbye_lag_ms, default=float('nan')):.0f} ms",
        f"    simulators' CPU {u.sim_cpu_s:.2f} s ({100 * u.sim_cpu_s / u.wall_s:.0f}% of a "
        f"core), machine busy {u.machine_busy_pct:.0f}% of {os.cpu_count()} cores, sim loop "
        f"lag p99 {u.loop_lag_p99_ms:.1f} ms, max {u.loop_lag_max_ms:.1f} ms "
        f"(at +{u.loop_lag_max_at_s:.2f} s)",
    ]
    lines += [f"    underrun: {note}" for note in f.underrun_notes[:5]]
    return "\n".join(lines)


def summary(runs: list[RunFigures]) -> None:
    columns = [
        ("CPU s", lambda f: f.usage.cpu_s, "{:.2f}"),
        ("CPU %core", lambda f: f.cpu_pct, "{:.0f}"),
        ("ms/call-s", lambda f: f.cpu_ms_per_call_s, "{:.1f}"),
        ("RSS MB", lambda f: f.usage.peak_rss_mb, "{:.0f}"),
        ("react med", lambda f: median(f.reaction_ms), "{:.2f}"),
        ("react p95", lambda f: percentile(f.reaction_ms, 95), "{:.2f}"),
        ("underruns", lambda f: f.underruns, "{:.0f}"),
        ("caught", lambda f: f.barge_ins_caught, "{:.0f}"),
        ("trunc max", lambda f: max(f.truncate_err_ms, default=float("nan")), "{:.0f}"),
        ("bye lag", lambda f: median(f.goodbye_lag_ms), "{:.0f}"),
        ("machine %", lambda f: f.usage.machine_busy_pct, "{:.0f}"),
    ]
    servers = list(dict.fromkeys(f.server for f in runs))
    calls = runs[0].calls
    print(f"\nMedians over {len(runs) // len(servers)} repetition(s), {calls} concurrent calls "
          f"(reaction in ms; caught = barge-ins caught of {calls} expected; machine % of all "
          f"{os.cpu_count()} cores):")  # fmt: skip
    print(f"  {'server':<8}" + "".join(f"{name:>11}" for name, _, _ in columns))
    medians: dict[str, float] = {}
    for server in servers:
        mine = [f for f in runs if f.server == server]
        cells = []
        for name, value, fmt in columns:
            m = statistics.median(value(f) for f in mine)
            if name == "CPU s":
                medians[server] = m
            cells.append(fmt.format(m))
        print(f"  {server:<8}" + "".join(f"{cell:>11}" for cell in cells))
    if "daphne" in medians and "uvicorn" in medians:
        ratio = medians["uvicorn"] / medians["daphne"]
        print(f"  Uvicorn/Daphne server CPU: {ratio:.2f} (Daphne uses {1 / ratio:.2f}x Uvicorn's)")


# --- Set-up and main -----------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=40, help="concurrent calls (40)")
    parser.add_argument("--server", choices=["daphne", "uvicorn", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server (3)")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of a call (8)")
    parser.add_argument("--goodbye-every", type=int, default=4, help="0: no goodbyes (4)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--log-level", default="INFO", help="the server's LOG_LEVEL (INFO)")
    parser.add_argument("--debug", action="store_true", help="run the server with DEBUG on")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server logs")
    return parser.parse_args()


def migrate(database_url: str) -> None:
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
    )


def main() -> None:
    args = parse_args()
    servers: list[Server] = ["daphne", "uvicorn"] if args.server == "both" else [args.server]
    workdir = Path(tempfile.mkdtemp(prefix="bench-calls-"))
    database_url = args.database_url
    if not database_url:
        database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        print(f"Migrating a fresh SQLite database in {workdir} ...", flush=True)
        migrate(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    # The simulators narrate every frame at INFO; the figures are what matter here.
    logging.getLogger("simulators").setLevel(logging.WARNING)

    print(f"{args.calls} concurrent calls of ~{args.seconds:.0f} s, {args.repeat} repetition(s) "
          f"per server, {os.cpu_count()} cores; server logs in {workdir}", flush=True)  # fmt: skip
    runs: list[RunFigures] = []
    failed = False
    # Alternate servers so slow drifts in the machine's load hit both alike.
    for repeat in range(1, args.repeat + 1):
        for server in servers:
            log_path = workdir / f"{server}-{repeat}.log"
            print(f"[{server} #{repeat}] starting ...", flush=True)
            usage, outcomes = asyncio.run(run_calls(server, args, database_url, log_path))
            figures = judge_run(server, repeat, usage, outcomes)
            runs.append(figures)
            print(progress_line(figures), flush=True)
            for outcome in outcomes:
                if outcome.error:
                    print(f"    call {outcome.call_sid} failed: {outcome.error}")
            failed |= figures.failed > 0
    summary(runs)
    from django.db import connections

    connections.close_all()
    if failed or args.keep_logs:
        print(f"\nServer logs kept in {workdir}" + (" (some calls failed)" if failed else ""))
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
