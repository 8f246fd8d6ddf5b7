"""Truncation over a real network: audio_end_ms against what the caller really heard.

    .venv/bin/python benchmarks/bench_links.py [--runs 5] [--server uvicorn] [--link "150 ms + 40"]

Serves the project (a fresh SQLite file) and runs every barge-in scenario
`--runs` times over each link: the Twilio stand-in delays every message by
the one-way delay plus up to the jitter, each way, order kept (TCP). Each run
has its own jitter draws. Per link and scenario it prints the signed error
(`audio_end_ms` the model was told minus the ms of that answer the caller
heard: negative means the model was told less than was heard), the round
trip the call measured against the one the link gave its marks, and the
caller's underruns (gaps in the AI's audio, all runs) with the longest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

LINKS = {"0 ms": (0.0, 0.0), "60 ms": (60.0, 0.0), "60 ms + 40": (60.0, 40.0),
         "150 ms + 40": (150.0, 40.0)}  # fmt: skip
SCENARIOS = ("barge_in_tail", "barge_in_generating", "barge_in_back_to_back")


def call_row(call_sid: str) -> dict[str, Any]:
    from calls.models import CallSession

    row = CallSession.objects.filter(call_sid=call_sid).values().first()
    return row or {}


async def one_run(stack: Any, scenario: Any, link: Any, seed: int) -> tuple[float | None, Any]:
    """(audio_end_ms - heard ms, the caller's timeline); None if nothing was truncated."""
    from asgiref.sync import sync_to_async

    stack.queue_script(scenario.realtime)
    before = len(stack.realtime.sessions)
    caller = stack.caller(scenario.caller, uplink=link, downlink=link, link_seed=seed)
    try:
        timeline = await caller.run(timeout_s=30)
    finally:
        await caller.aclose()
    session = stack.realtime.sessions[before]
    await stack.realtime.wait_for(lambda: session.closed, 30)
    truncates = [
        r.event
        for r in session.recording.received
        if r.event.get("type") == "conversation.item.truncate"
    ]
    row = await sync_to_async(call_row)(caller.call_sid)
    if not truncates:
        return None, (timeline, row)
    heard = timeline.heard_ms_by_tone().get(scenario.expect.interrupted_tone, 0.0)
    return truncates[0]["audio_end_ms"] - heard, (timeline, row)


async def bench(runs: int, server: str, database_url: str, links: list[str]) -> None:
    from simulators.link import LinkProfile
    from simulators.scenarios import BY_NAME, GREETING
    from simulators.stack import LocalStack, frozen_heap

    env = {"AGENT_GREETING": GREETING}
    async with LocalStack(database_url=database_url, server=server, env=env) as stack:
        print(f"{'link (one way)':<13} {'scenario':<22} {'n':>2}  "
              f"{'error min / median / max ms':>28}  {'max |err|':>9}  "
              f"{'rtt measured - given ms':>24}  {'underruns (max ms)':>18}")  # fmt: skip
        for label, (delay, jitter) in LINKS.items():
            if links and label not in links:
                continue
            link = LinkProfile(delay, jitter)
            worst = 0.0
            for name in SCENARIOS:
                if name not in BY_NAME:
                    continue
                errors: list[float] = []
                rtt_diffs: list[float] = []
                gaps: list[float] = []
                for seed in range(runs):
                    with frozen_heap():  # no collection stalls the caller for 100 ms
                        error, (timeline, row) = await one_run(stack, BY_NAME[name], link, seed)
                    if error is not None:
                        errors.append(error)
                    gaps += [gap.gap_ms for gap in timeline.underruns]
                    given = getattr(timeline, "round_trips_ms", lambda: [])()
                    measured = row.get("link_rtt_p50_ms")
                    if given and measured is not None:
                        rtt_diffs.append(measured - statistics.median(given))
                if not errors:
                    print(f"{label:<13} {name:<22} no truncate")
                    continue
                worst = max(worst, max(abs(e) for e in errors))
                rtt = (
                    f"{min(rtt_diffs):+.0f} / {statistics.median(rtt_diffs):+.0f} / "
                    f"{max(rtt_diffs):+.0f}"
                    if rtt_diffs
                    else "-"
                )
                underruns = f"{len(gaps)} ({max(gaps):.0f})" if gaps else "0"
                beyond = sum(abs(e) > 40 for e in errors)
                print(
                    f"{label:<13} {name:<22} {len(errors):>2}  "
                    f"{min(errors):+8.0f} / {statistics.median(errors):+6.0f} / "
                    f"{max(errors):+6.0f}  {max(abs(e) for e in errors):>9.0f}  {rtt:>24}  "
                    f"{underruns:>18}  {beyond} beyond 40 ms",
                    flush=True,
                )
            print(f"{label:<13} worst |error| {worst:.0f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument(
        "--link", action="append", default=[], choices=list(LINKS), help="only these links"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/bench.sqlite3"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "config.dev_settings",
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=PROJECT_ROOT,
            env=env,
            check=True,
        )
        os.environ["DATABASE_URL"] = database_url
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.dev_settings"
        import django

        django.setup()
        asyncio.run(bench(args.runs, args.server, database_url, args.link))


if __name__ == "__main__":
    main()
