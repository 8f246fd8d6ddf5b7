"""Benchmark `drain_diagnostics` on a large, freshly built database and print the figures.

    .venv/bin/python benchmarks/bench_drain_diagnostics.py [--calls 10000 --logs 1000000]

Builds a throwaway database (a temporary SQLite file, or `bench_drain_<name>`
on the server `DATABASE_URL` points at; the configured database is never
touched), fills it with bulk_create, then times the command for several
selections (median of `--repeat` runs, output rendered to memory) and counts
its queries.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.dev_settings"
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from callcore.records import CallState  # noqa: E402
from calls.models import BargeInEvent, CallSession, PlayoutLog  # noqa: E402

CALLS_PER_CHUNK = 500


def sid(n: int) -> str:
    return f"CA{n:032d}"


def call_script(per_call: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """`per_call` (kind, playout_status, details) rows shaped like a real call's log."""
    yield "stream_started", "", {}
    tail = [
        ("end_call_requested", "", {"call_id": "fc_1"}),
        ("drain_started", "", {"expected_wait_ms": 1500, "pending_ms": 900, "unplayed_ms": 600}),
        (
            "drain_completed",
            "",
            {
                "expected_wait_ms": 1500,
                "actual_wait_ms": 1480,
                "final_mark_echoed": True,
                "cut_off_ms": 0,
            },
        ),
        ("stream_ended", "", {"end_reason": "hangup"}),
    ]
    body = per_call - 1 - len(tail)
    n = 0
    while body > 0:
        rid = f"resp_{n}"
        turn: list[tuple[str, str, dict[str, Any]]] = [
            ("response_started", "", {"response_id": rid, "generation": n}),
            ("playout_started", "", {"response_id": rid, "item_id": f"item_{n}"}),
            ("playout_ended", "", {"response_id": rid, "audio_end_offset_ms": 0, "audio_ms": 2400}),
            ("response_done", "", {"response_id": rid, "status": "completed", "audio_ms": 2400}),
            (
                "mark_stats",
                "",
                {
                    "response_id": rid,
                    "count": 4,
                    "estimate_error_ms": [12, -3, 25, 8],
                    "round_trip_ms": [85, 90, 110, 95],
                },
            ),
            (
                ("barge_in", "playout_active_1800ms", {"response_id": rid})
                if n % 4 == 1
                else ("user_speech_ai_silent", "playout_ended_2600ms_ago", {"pending_frames": 0})
            ),
            ("speech_stopped", "", {"audio_end_ms": 0}),
        ]
        yield from turn[:body]
        body -= len(turn)
        n += 1
    yield from tail[: per_call - 1]


def populate(calls: int, logs: int) -> None:
    per_call = max(1, logs // calls)
    script = list(call_script(per_call))
    now = timezone.now()
    started = CallSession._meta.get_field("started_at")
    started.auto_now_add = False  # type: ignore[attr-defined]  # keep spread-out start times
    t0 = time.perf_counter()
    try:
        for first in range(0, calls, CALLS_PER_CHUNK):
            with transaction.atomic():
                _populate_chunk(range(first, min(first + CALLS_PER_CHUNK, calls)), script, now)
            done = min(first + CALLS_PER_CHUNK, calls)
            print(
                f"  {done:>7} calls, {done * len(script):>9} log rows "
                f"({time.perf_counter() - t0:5.1f} s)",
                flush=True,
            )
    finally:
        started.auto_now_add = True  # type: ignore[attr-defined]


def _populate_chunk(
    numbers: range, script: list[tuple[str, str, dict[str, Any]]], now: datetime
) -> None:
    calls = CallSession.objects.bulk_create(
        CallSession(
            call_sid=sid(n),
            # One call a minute, newest first: --since 1d selects about 1,440.
            started_at=now - timedelta(minutes=n),
            stream_started_at=now - timedelta(minutes=n),
            ended_at=now - timedelta(minutes=n) + timedelta(seconds=50),
            status=CallState.COMPLETED if n % 50 else CallState.STREAMING,
            end_reason="hangup",
            responses=12,
            ai_audio_ms=28_800,
        )
        for n in numbers
    )
    rows: list[PlayoutLog] = []
    barge_ins: list[BargeInEvent] = []
    for call in calls:
        call_id = call.pk  # SQLite and PostgreSQL both return bulk-inserted ids
        for i, (kind, status, details) in enumerate(script):
            at = call.started_at + timedelta(milliseconds=i * 450)
            rows.append(
                PlayoutLog(
                    call_id=call_id,
                    kind=kind,
                    occurred_at=at,
                    offset_ms=i * 450,
                    playout_status=status,
                    details=details,
                )
            )
            if kind == "barge_in":
                barge_ins.append(
                    BargeInEvent(
                        call_id=call_id,
                        occurred_at=at,
                        offset_ms=i * 450,
                        response_id=details["response_id"],
                        playout_remaining_ms=1800,
                        audio_end_ms=600,
                        reaction_ms=0.6 if i % 3 else 62.0,
                    )
                )
    PlayoutLog.objects.bulk_create(rows, batch_size=2000)
    BargeInEvent.objects.bulk_create(barge_ins, batch_size=2000)


def time_command(label: str, args: list[str], repeat: int) -> None:
    def once() -> tuple[float, int]:
        out = StringIO()
        t0 = time.perf_counter()
        call_command("drain_diagnostics", *args, stdout=out)
        return time.perf_counter() - t0, len(out.getvalue())

    once()  # warm the page cache and Django's lazy setup
    timings = [once()[0] for _ in range(repeat)]
    with CaptureQueriesContext(connection) as queries:
        _, size = once()
    print(
        f"  {label:<28} median {statistics.median(timings) * 1000:8.1f} ms  "
        f"(min {min(timings) * 1000:7.1f}, max {max(timings) * 1000:7.1f})  "
        f"queries {len(queries)}  output {size / 1024:7.1f} KiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    if options.calls < 1 or options.logs < options.calls or options.repeat < 1:
        parser.error("need --calls >= 1, --logs >= --calls and --repeat >= 1")

    workdir = tempfile.mkdtemp(prefix="bench-drain-")
    test_settings = connection.settings_dict["TEST"]
    if connection.vendor == "sqlite":  # a file, not the in-memory default, as in production
        test_settings["NAME"] = str(Path(workdir) / "bench.sqlite3")
    else:  # never the test suite's test_<name>, which a parallel test run may be using
        test_settings["NAME"] = f"bench_drain_{connection.settings_dict['NAME']}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
        print(f"populating {options.calls} calls, ~{options.logs} playout-log rows:")
        t0 = time.perf_counter()
        populate(options.calls, options.logs)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(
            f"populated in {time.perf_counter() - t0:.1f} s: {CallSession.objects.count()} calls, "
            f"{PlayoutLog.objects.count()} log rows, {BargeInEvent.objects.count()} barge-ins"
        )
        middle = sid(options.calls // 2)
        print(f"drain_diagnostics, median of {options.repeat}:")
        time_command("(default: last 20)", [], options.repeat)
        time_command("--last 1000", ["--last", "1000"], options.repeat)
        time_command(f"--call {middle[:10]}...", ["--call", middle], options.repeat)
        time_command("--since 2h", ["--since", "2h"], options.repeat)
        time_command("--since 1d", ["--since", "1d"], options.repeat)
        time_command("--since 1d --json", ["--since", "1d", "--json"], options.repeat)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
