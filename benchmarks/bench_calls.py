"""Benchmark N concurrent calls against one server process, with the load generated elsewhere.

    .venv/bin/python benchmarks/bench_calls.py --calls 100 200 --cpus 0 [--server uvicorn]
        [--repeat 3] [--seconds 8] [--database-url URL]

Every call: the AI greets (4 s of audio, sent at 6x real time, so the model
has long finished when the caller speaks); the caller talks 2.5 s into the
greeting (a barge-in in the playout tail, the original bug); the model
answers; the caller stays silent and hangs up with `stop`. Every 4th answer is
a goodbye with `end_call`, which the server drains and hangs up itself.

The server runs alone in its process, pinned with `taskset` to `--cpus`;
the simulated callers (`loadgen callers`, ~50 calls a process) and the
Realtime stand-in (`loadgen realtime`, sharing one port) run in processes of
their own on the other cores. Figures come from evidence the server does not
write: the callers' timelines (what was heard, when the `clear` arrived) and
the stand-in's recording (when `speech_started` went out, when the
greeting's `response.create` arrived), joined through the call rows'
`model_session_id`.

Per N it prints: barge-ins caught; reaction p50/p99, from `speech_started`
leaving the stand-in to the first `clear` reaching the caller (two loopback hops
included); when the caller stopped hearing the AI, from their first voiced
frame to the last of the greeting they heard (a clear, or the answer held at
the stop target running out: no clear needed); |truncation error| p50/p95
against what the caller heard;
underruns; server CPU ms per call-second and RSS per call; set-up latency
p50/p95 (`start` sent to the greeting's `response.create` received: the
session connected and configured, the stream claimed; `session.update` itself
may go before `start`, see calls.live.preopen). A repetition whose
generator process used more than 80% of a core gives no figures: it measured
the generator. The summary quotes medians over repetitions and the highest
N that held 100% caught, 0 underruns and reaction p99 <= 10 ms.

On loopback every handshake is nearly free; `--model-connect-ms` and
`--stream-connect-ms` give the two that cross the internet in production (the
server to OpenAI, Twilio to the server) their round trips, as waits in the
stand-ins, so set-up figures show what overlapping them is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.figures import Evidence, RunFigures, judge, print_run, print_summary  # noqa: E402
from benchmarks.generators import Generators  # noqa: E402
from benchmarks.procstat import tree_cpu_s, tree_peak_rss_mb, tree_rss_mb  # noqa: E402
from simulators.stack import AUTH_TOKEN, PUBLIC_BASE_URL, Server, ServerProcess  # noqa: E402
from simulators.twilio import CallerScript, Silence, TwilioCaller  # noqa: E402

GENERATOR_CPU_LIMIT_PCT = 80.0


def other_cpus(pinned: str) -> str | None:
    """The cores not in `pinned` (a taskset list like "0" or "0,1"), for the generators."""
    taken: set[int] = set()
    for part in pinned.split(","):
        low, _, high = part.partition("-")
        taken.update(range(int(low), int(high or low) + 1))
    rest = [str(cpu) for cpu in sorted(os.sched_getaffinity(0)) if cpu not in taken]
    return ",".join(rest) or None


def generator_cores(args: argparse.Namespace) -> int:
    others = other_cpus(args.cpus) if args.cpus else None
    return len(others.split(",")) if others else len(os.sched_getaffinity(0))


async def warm_up(base_url: str) -> None:
    # Lazy imports, the shared client and first connections stay out of the figures.
    caller = TwilioCaller(
        public_base_url=PUBLIC_BASE_URL,
        local_base_url=base_url,
        auth_token=AUTH_TOKEN,
        script=CallerScript(segments=(Silence(1200),), hangup="stop"),
    )
    try:
        await caller.run(timeout_s=30)
    finally:
        await caller.aclose()


async def run_once(
    server: Server, calls: int, repeat: int, args: argparse.Namespace, workdir: Path
) -> Evidence:
    tag = f"{server}-{calls}-{repeat}"
    generator_cpus = other_cpus(args.cpus) if args.cpus else None
    gens = Generators(
        workdir / tag,
        cpus=generator_cpus,
        seconds=args.seconds,
        ramp_s=args.ramp_s,
        model_connect_ms=args.model_connect_ms,
        stream_connect_ms=args.stream_connect_ms,
    )
    async with gens:
        await gens.start_realtime(args.realtime_procs or max(1, -(-calls // 100)))
        env = {"AGENT_GREETING": "Hello, thanks for calling. How can I help?"}
        env |= {"LOG_LEVEL": args.log_level, "DJANGO_DEBUG": "false"}
        env |= {"DJANGO_SECRET_KEY": secrets.token_urlsafe(40)}
        if not args.admit:
            # Every call is taken, however loaded the server: the figures are its own.
            env |= {"MAX_ACTIVE_CALLS": "0", "ADMIT_MAX_LOOP_LAG_MS": "0"}
        env |= dict(setting.split("=", 1) for setting in args.env)
        process = ServerProcess(
            database_url=args.database_url,
            realtime_url=gens.realtime_url,
            server=server,
            env=env,
            log_path=workdir / f"{tag}.log",
            cpus=args.cpus,
            root=args.server_root,
        )
        await process.start()
        try:
            pid = process.pid
            assert pid is not None
            await warm_up(process.local_base_url)
            rss_before = tree_rss_mb(pid)
            cpu_before = tree_cpu_s(pid)
            per_proc = args.calls_per_proc
            profiler = await start_profiler(args.py_spy, pid, workdir / f"{tag}.folded")
            window = await gens.run_callers(process.local_base_url, calls, per_proc, pid)
            await stop_profiler(profiler)
            await gens.wait_recorded(window.call_sids, timeout_s=20)
            cpu_s = tree_cpu_s(pid) - cpu_before
            usage = window.usage(cpu_s, rss_before, tree_peak_rss_mb(pid))
        finally:
            await process.stop()
        realtime = await gens.stop_realtime(usage)
    return Evidence(window.calls, realtime, usage)


async def start_profiler(
    enabled: bool, pid: int, output: Path
) -> asyncio.subprocess.Process | None:
    """py-spy sampling the server (it changes nothing in it); folded stacks to `output`."""
    if not enabled:
        return None
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
        "--rate", "200", "--format", "raw", "--output", str(output), "--nonblocking", "--gil",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def stop_profiler(profiler: asyncio.subprocess.Process | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        await asyncio.wait_for(profiler.wait(), 30)


def migrate(database_url: str, root: Path) -> None:
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.dev_settings")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=root,
        env=env,
        check=True,
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[100], help="N values (100)")
    parser.add_argument("--server", choices=["daphne", "uvicorn", "both"], default="uvicorn")
    parser.add_argument("--repeat", type=int, default=3, help="runs per N and server (3)")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of a call (8)")
    parser.add_argument(
        "--ramp-s", type=float, default=0.0, help="calls arrive spread over this (0: all at once)"
    )
    parser.add_argument("--cpus", default="", help="pin the server (taskset list, e.g. 0)")
    parser.add_argument(
        "--model-connect-ms",
        type=float,
        default=0.0,
        help="a connect to the Realtime stand-in takes this long (OpenAI over the internet)",
    )
    parser.add_argument(
        "--stream-connect-ms",
        type=float,
        default=0.0,
        help="Twilio opens the media stream this long after the TwiML (its handshakes)",
    )
    parser.add_argument("--calls-per-proc", type=int, default=50, help="callers a process (50)")
    parser.add_argument("--realtime-procs", type=int, default=0, help="0: one per 100 calls")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument(
        "--server-root",
        type=Path,
        default=PROJECT_ROOT,
        help="serve another checkout (a worktree of an earlier commit) for before/after figures",
    )
    parser.add_argument("--log-level", default="WARNING", help="the server's LOG_LEVEL")
    parser.add_argument("--keep-logs", action="store_true", help="keep logs and results")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a server setting"
    )
    parser.add_argument(
        "--admit",
        action="store_true",
        help="keep the admission limits (MAX_ACTIVE_CALLS, ADMIT_MAX_LOOP_LAG_MS): calls "
        "over them are turned away and count as failed",
    )
    parser.add_argument(
        "--py-spy", action="store_true", help="profile the server (folded stacks kept in logs)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    servers: list[Server] = ["daphne", "uvicorn"] if args.server == "both" else [args.server]
    workdir = Path(tempfile.mkdtemp(prefix="bench-calls-"))
    if not args.database_url:
        args.database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        print(f"Migrating a fresh SQLite database in {workdir} ...", flush=True)
        migrate(args.database_url, args.server_root)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.dev_settings"
    import django

    django.setup()
    from django.conf import settings

    # The server chooses the SQLite journal mode (WAL since the writer change; an
    # earlier checkout may not): this process only reads and must not switch it.
    settings.DATABASES["default"].get("OPTIONS", {}).pop("init_command", None)
    logging.getLogger("simulators").setLevel(logging.WARNING)
    pinned = f"server pinned to CPU {args.cpus}" if args.cpus else "server not pinned"
    print(
        f"N = {args.calls} concurrent calls of ~{args.seconds:.0f} s, {args.repeat} "
        f"repetition(s), {os.cpu_count()} cores, {pinned}; logs in {workdir}",
        flush=True,
    )
    runs: list[RunFigures] = []
    for calls in args.calls:
        # Alternate servers so slow drifts in the machine's load hit both alike.
        for repeat in range(1, args.repeat + 1):
            for server in servers:
                print(f"[{server} N={calls} #{repeat}] running ...", flush=True)
                evidence = asyncio.run(run_once(server, calls, repeat, args, workdir))
                figures = judge(
                    server, calls, repeat, evidence, GENERATOR_CPU_LIMIT_PCT, generator_cores(args)
                )
                runs.append(figures)
                print_run(figures)
    print_summary(runs)
    from django.db import connections

    connections.close_all()
    if args.keep_logs or args.py_spy:
        print(f"\nLogs and results kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
