"""Two server processes on PostgreSQL and Redis: live-view latency under load, handover gap.

    DATABASE_URL=postgres://... REDIS_URL=redis://... \\
        .venv/bin/python benchmarks/bench_processes.py [--calls 100] [--handovers 20] [--repeat 3]

Phase 1: `--calls` concurrent calls (the bench_calls call: a tail barge-in,
an answer, every 4th a goodbye), half on each of two Uvicorn processes, the
callers and the Realtime stand-in in load-generator processes of their own.
A staff browser's live-view socket is connected to the first process; for
every barge-in event it receives, latency = received (wall) - when the
serving process published it. Quotes p50/p95/max and how many of the
calls' barge-ins reached the live view.

Phase 2: `--handovers` calls on the first process (callers here, idle
between words), then SIGTERM to it, as a deploy does: every call is handed
over to the second through `<Connect action>`; the gap each caller has no
stream (old one closed to new one started) p50/p95/max, and how many calls
survived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.generators import Generators  # noqa: E402
from benchmarks.procstat import tree_cpu_s  # noqa: E402
from simulators.stack import AUTH_TOKEN, PUBLIC_BASE_URL, ServerProcess  # noqa: E402
from simulators.twilio import CallerScript, Silence, TwilioCaller  # noqa: E402

ENV = {
    "AGENT_GREETING": "Hello, thanks for calling. How can I help?",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1,calls.simulated.test",
    # Every call is taken (no admission limits): the figures are the servers' own.
    "MAX_ACTIVE_CALLS": "0",
    "ADMIT_MAX_LOOP_LAG_MS": "0",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")
    )


def staff_cookie() -> str:
    from django.contrib.auth.models import User
    from django.test import Client

    user, _ = User.objects.get_or_create(username="bench-operator", defaults={"is_staff": True})
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return f"sessionid={client.cookies['sessionid'].value}"


async def live_view(
    url: str, cookie: str, received: list[dict[str, Any]], ready: asyncio.Event
) -> None:
    from websockets.asyncio.client import connect

    from calls.paths import LIVE_VIEW_PATH

    ws_url = url.replace("http://127.0.0.1", "ws://localhost") + "/" + LIVE_VIEW_PATH
    origin = url.replace("127.0.0.1", "localhost")
    async with connect(ws_url, additional_headers={"Cookie": cookie}, origin=origin) as ws:  # type: ignore[arg-type]
        ready.set()
        async for message in ws:
            event = json.loads(message)
            event["received_at"] = time.time()
            received.append(event)


async def phase_live_view(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from asgiref.sync import sync_to_async

    from calls.models import BargeInEvent

    gens = Generators(workdir / "a", cpus=None, seconds=args.seconds)
    more = Generators(workdir / "b", cpus=None, seconds=args.seconds)
    async with gens, more:
        await gens.start_realtime(max(1, -(-args.calls // 100)))
        servers = [
            ServerProcess(database_url=args.database_url, realtime_url=gens.realtime_url,
                          server="uvicorn", env=ENV, log_path=workdir / f"server-{i}.log")
            for i in range(2)
        ]  # fmt: skip
        for server in servers:
            await server.start()
        try:
            cookie = await sync_to_async(staff_cookie)()
            received: list[dict[str, Any]] = []
            ready = asyncio.Event()
            viewer = asyncio.ensure_future(
                live_view(servers[0].local_base_url, cookie, received, ready)
            )
            await asyncio.wait_for(ready.wait(), 10)
            cpu_before = [tree_cpu_s(s.pid or 0) for s in servers]
            half = args.calls // 2
            windows = await asyncio.gather(
                gens.run_callers(servers[0].local_base_url, half, 50, servers[0].pid or 0),
                more.run_callers(
                    servers[1].local_base_url, args.calls - half, 50, servers[1].pid or 0
                ),
            )
            sids = [sid for window in windows for sid in window.call_sids]
            await gens.wait_recorded(sids, timeout_s=30)
            cpu_s = [tree_cpu_s(s.pid or 0) - b for s, b in zip(servers, cpu_before, strict=True)]
            await asyncio.sleep(1.0)  # the last events still on their way to the viewer
            viewer.cancel()
            barge_ins = await sync_to_async(
                lambda: BargeInEvent.objects.filter(call__call_sid__in=sids).count()
            )()
        finally:
            for server in servers:
                await server.stop()
        await gens.stop_realtime(windows[0].usage(0, 0, 0))
    seen = [e for e in received if e.get("kind") == "barge_in" and e.get("call_sid") in set(sids)]
    latencies = [1000 * (e["received_at"] - e["at"]) for e in seen]
    relay = [1000 * (e["relayed_at"] - e["at"]) for e in seen if "relayed_at" in e]
    local = set(windows[0].call_sids)
    by_origin = {
        origin: pct([1000 * (e["received_at"] - e["at"]) for e in seen
                     if (e["call_sid"] in local) == (origin == "same")], 0.5)
        for origin in ("same", "other")
    }  # fmt: skip
    generator_cpu = [g.cpu_pct for w in windows for g in w.generators]
    return {
        "barge_ins": barge_ins,
        "by_origin": by_origin,
        "to_relay_p50": pct(relay, 0.5),
        "seen": len(seen),
        "p50": pct(latencies, 0.5),
        "p95": pct(latencies, 0.95),
        "max": max(latencies, default=float("nan")),
        "server_cpu_s": cpu_s,
        "generator_cpu_max_pct": max(generator_cpu, default=0.0),
    }


async def phase_handover(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from simulators.realtime import RealtimeSimulator

    async with RealtimeSimulator() as realtime:
        servers = [
            ServerProcess(database_url=args.database_url, realtime_url=realtime.websocket_base_url,
                          server="uvicorn", env=ENV, log_path=workdir / f"handover-{i}.log")
            for i in range(2)
        ]  # fmt: skip
        for server in servers:
            await server.start()
        callers = [
            TwilioCaller(public_base_url=PUBLIC_BASE_URL, local_base_url=servers[0].local_base_url,
                         auth_token=AUTH_TOKEN,
                         script=CallerScript(segments=(Silence(6000),), hangup="stop"))
            for _ in range(args.handovers)
        ]  # fmt: skip
        try:
            runs = [asyncio.ensure_future(c.run(timeout_s=60)) for c in callers]
            for caller in callers:
                await caller.wait_heard(1, 500, timeout_s=30)
            for caller in callers:  # the load balancer's part
                caller.local_base_url = caller.local_stream_base_url = servers[1].local_base_url
            await servers[0].stop()
            timelines = await asyncio.gather(*runs, return_exceptions=True)
        finally:
            for caller in callers:
                await caller.aclose()
            for server in servers:
                await server.stop()
    gaps = [
        1000 * g for t in timelines if not isinstance(t, BaseException) for g in t.handover_gaps_s
    ]
    kept = sum(
        1
        for t in timelines
        if not isinstance(t, BaseException) and t.handovers and t.closed_by == "caller"
    )
    return {"calls": args.handovers, "kept": kept, "p50": pct(gaps, 0.5), "p95": pct(gaps, 0.95),
            "max": max(gaps, default=float("nan"))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--handovers", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    args.database_url = os.environ.get("DATABASE_URL", "")
    if not args.database_url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("needs DATABASE_URL (PostgreSQL) and REDIS_URL: two processes share them")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.dev_settings"
    # One key here and in the servers: the live view's session is made here.
    key = secrets.token_urlsafe(48)
    os.environ["DJANGO_SECRET_KEY"] = key
    ENV["DJANGO_SECRET_KEY"] = key
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    live, hand = [], []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            live.append(asyncio.run(phase_live_view(args, Path(tmp))))
            hand.append(asyncio.run(phase_handover(args, Path(tmp))))
        lv, ho = live[-1], hand[-1]
        print(f"  live-view p50 by where the call ran: {lv['by_origin']}; published to "
              f"relayed by the viewer's server p50 {lv['to_relay_p50']:.1f} ms")  # fmt: skip
        print(f"run {run + 1}: live view {lv['seen']}/{lv['barge_ins']} barge-ins seen, latency "
              f"p50 {lv['p50']:.1f} / p95 {lv['p95']:.1f} / max {lv['max']:.1f} ms; server CPU "
              f"{lv['server_cpu_s'][0]:.1f} + {lv['server_cpu_s'][1]:.1f} s; generators max "
              f"{lv['generator_cpu_max_pct']:.0f}% of a core | handover {ho['kept']}/{ho['calls']} "
              f"kept, gap p50 {ho['p50']:.0f} / p95 {ho['p95']:.0f} / max {ho['max']:.0f} ms",
              flush=True)  # fmt: skip
    med = statistics.median
    print(f"medians of {args.repeat}: live-view latency at {args.calls} calls on two processes "
          f"p50 {med(r['p50'] for r in live):.1f} ms, p95 {med(r['p95'] for r in live):.1f} ms; "
          f"handover gap p50 {med(r['p50'] for r in hand):.0f} ms, "
          f"p95 {med(r['p95'] for r in hand):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
