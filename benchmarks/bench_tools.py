"""Benchmark the tool dispatch overhead at N concurrent calls, with the load generated elsewhere.

    .venv/bin/python benchmarks/bench_tools.py --calls 100 --cpus 0 [--server uvicorn]
        [--repeat 3] [--database-url URL]

Every call is `bench_calls.py`'s (a greeting, a barge-in in its tail, an
answer), except that the answer is a short "let me check" and a function
call of one of `benchmarks.agents`' tools (a sync one with an ORM query, an
async one, alternately; each works about 20 ms), whose result the model
answers. The server runs alone in its process, pinned to `--cpus`; the
callers and the Realtime stand-in run in processes of their own.

The figures come from evidence the server does not write, on the one
monotonic clock every process of the machine shares: the stand-in's record
of when it sent `response.function_call_arguments.done` and when it received
the result and the next `response.create`, and the tool's own record of when
it started and returned (in its result):

- dispatch: arguments sent -> the function starts (a loopback hop, the
  event's parsing, the core's decision, a thread hop for a sync tool);
- reply: the function returns -> the output received by the stand-in, and
  -> the answer's `response.create` received (a loopback hop included).

The tool's own time is in neither. The server's own figures (`tool_call`
rows: `dispatch_ms`, `reply_ms`) are printed beside them. Target: p99 of
each <= 5 ms at 100 calls. A repetition whose generator used more than 80%
of a core gives no figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.bench_calls import (  # noqa: E402
    GENERATOR_CPU_LIMIT_PCT,
    generator_cores,
    migrate,
    other_cpus,
    warm_up,
)
from benchmarks.figures import median, percentile  # noqa: E402
from benchmarks.generators import Generators  # noqa: E402
from benchmarks.procstat import tree_cpu_s, tree_peak_rss_mb, tree_rss_mb  # noqa: E402
from simulators.stack import Server, ServerProcess  # noqa: E402

TARGET_P99_MS = 5.0


async def run_once(
    server: Server, calls: int, repeat: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    tag = f"{server}-{calls}-{repeat}"
    gens = Generators(
        workdir / tag,
        cpus=other_cpus(args.cpus) if args.cpus else None,
        seconds=args.seconds,
        ramp_s=args.ramp_s,
        tools=True,
    )
    async with gens:
        await gens.start_realtime(max(1, -(-calls // 100)))
        env = {
            "AGENT_GREETING": "Hello, thanks for calling. How can I help?",
            "AGENT_HOOKS": "benchmarks.agents.BenchHooks",
            "LOG_LEVEL": "WARNING",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            # Every call is taken (no admission limits): the figures are the server's own.
            "MAX_ACTIVE_CALLS": "0",
            "ADMIT_MAX_LOOP_LAG_MS": "0",
        }
        env |= dict(setting.split("=", 1) for setting in args.env)
        process = ServerProcess(
            database_url=args.database_url,
            realtime_url=gens.realtime_url,
            server=server,
            env=env,
            log_path=workdir / f"{tag}.log",
            cpus=args.cpus,
        )
        await process.start()
        try:
            pid = process.pid
            assert pid is not None
            await warm_up(process.local_base_url)
            rss_before, cpu_before = tree_rss_mb(pid), tree_cpu_s(pid)
            window = await gens.run_callers(process.local_base_url, calls, 50, pid)
            await gens.wait_recorded(window.call_sids, timeout_s=20)
            usage = window.usage(tree_cpu_s(pid) - cpu_before, rss_before, tree_peak_rss_mb(pid))
        finally:
            await process.stop()
        sessions = await gens.stop_realtime(usage)
    return {"calls": window.calls, "sessions": sessions, "usage": usage}


def figures(run: dict[str, Any], cores: int) -> dict[str, Any]:
    usage = run["usage"]
    loads = usage.generators
    busy = [g.role for g in loads if g.cpu_pct > GENERATOR_CPU_LIMIT_PCT]
    if sum(g.cpu_pct for g in loads) / max(cores, 1) > GENERATOR_CPU_LIMIT_PCT:
        busy.append("generators together")
    dispatch: list[float] = []
    output: list[float] = []
    reply: list[float] = []
    own: list[float] = []
    # Per kind of tool: a sync one (its result says what its query found) or async.
    by_kind: dict[str, list[float]] = {"sync": [], "async": []}
    for session in run["sessions"]:
        for tool in session["tools"]:
            result = json.loads(tool["result"])
            if "started" not in result or tool["arguments_done_at"] is None:
                continue
            dispatch.append(1000 * (result["started"] - tool["arguments_done_at"]))
            kind = "sync" if "found" in result else "async"
            by_kind[kind].append(max(dispatch[-1], 1000 * (tool["output_at"] - result["returned"])))
            output.append(1000 * (tool["output_at"] - result["returned"]))
            own.append(1000 * (result["returned"] - result["started"]))
            if tool["create_at"] is not None:
                reply.append(1000 * (tool["create_at"] - result["returned"]))
    server_dispatch, server_reply = _server_figures([c["call_sid"] for c in run["calls"]])
    return {
        "refused": ", ".join(busy),
        "failed": sum(1 for call in run["calls"] if call["error"]),
        "tool_calls": len(dispatch),
        "dispatch": dispatch,
        "output": output,
        "reply": reply,
        "own": own,
        "by_kind": by_kind,
        "server_dispatch": server_dispatch,
        "server_reply": server_reply,
        "cpu_pct": 100 * usage.server_cpu_s / usage.wall_s,
        "generators": {g.role: round(g.cpu_pct) for g in loads},
    }


def _server_figures(call_sids: list[str]) -> tuple[list[float], list[float]]:
    from calls.models import PlayoutLog

    details = PlayoutLog.objects.filter(call__call_sid__in=call_sids, kind="tool_call").values_list(
        "details", flat=True
    )
    dispatch = [float(d["dispatch_ms"]) for d in details if d.get("dispatch_ms") is not None]
    reply = [float(d["reply_ms"]) for d in details if d.get("reply_ms") is not None]
    return dispatch, reply


def _p(values: list[float]) -> str:
    if not values:
        return "      -/-     "
    return f"{percentile(values, 50):6.2f}/{percentile(values, 99):6.2f}"


def print_run(label: str, run: dict[str, Any]) -> None:
    if run["refused"]:
        print(f"  {label}: no figures, a generator ran out of core ({run['refused']})")
        return
    print(
        f"  {label}: {run['tool_calls']} tool calls, {run['failed']} failed calls; "
        f"p50/p99 ms: dispatch {_p(run['dispatch'])}  output {_p(run['output'])}  "
        f"answer asked {_p(run['reply'])}  (server's own: dispatch "
        f"{_p(run['server_dispatch'])} reply {_p(run['server_reply'])}); tools' own "
        f"{_p(run['own'])}; the worse of dispatch and output, sync tools "
        f"{_p(run['by_kind']['sync'])}, async {_p(run['by_kind']['async'])}; server CPU "
        f"{run['cpu_pct']:.0f}%; generators {run['generators']}",
        flush=True,
    )


def print_summary(runs: dict[str, list[dict[str, Any]]]) -> None:
    print("\nMedians over repetitions (p99 ms; target <= 5):")
    for label, measured in runs.items():
        good = [run for run in measured if not run["refused"]]
        if not good:
            print(f"  {label}: no repetition gave figures")
            continue
        worst = {
            key: median([percentile(run[key], 99) for run in good])
            for key in ("dispatch", "output", "reply")
        }
        verdict = "met" if max(worst.values()) <= TARGET_P99_MS else "NOT met"
        print(
            f"  {label}: dispatch {worst['dispatch']:.2f}, output {worst['output']:.2f}, "
            f"answer asked {worst['reply']:.2f} over {len(good)} run(s): target {verdict}"
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
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--keep-logs", action="store_true", help="keep logs and results")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a server setting"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    servers: list[Server] = ["daphne", "uvicorn"] if args.server == "both" else [args.server]
    workdir = Path(tempfile.mkdtemp(prefix="bench-tools-"))
    if not args.database_url:
        args.database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        print(f"Migrating a fresh SQLite database in {workdir} ...", flush=True)
        migrate(args.database_url, PROJECT_ROOT)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.dev_settings"
    import django

    django.setup()
    from django.conf import settings

    settings.DATABASES["default"].get("OPTIONS", {}).pop("init_command", None)
    logging.getLogger("simulators").setLevel(logging.WARNING)
    pinned = f"server pinned to CPU {args.cpus}" if args.cpus else "server not pinned"
    print(f"N = {args.calls} concurrent calls with a tool call each; {pinned}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {}
    for calls in args.calls:
        for repeat in range(1, args.repeat + 1):
            for server in servers:
                label = f"{server} N={calls}"
                print(f"[{label} #{repeat}] running ...", flush=True)
                evidence = asyncio.run(run_once(server, calls, repeat, args, workdir))
                measured = figures(evidence, generator_cores(args))
                runs.setdefault(label, []).append(measured)
                print_run(f"{label} #{repeat}", measured)
    print_summary(runs)
    from django.db import connections

    connections.close_all()
    if args.keep_logs:
        print(f"\nLogs and results kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
