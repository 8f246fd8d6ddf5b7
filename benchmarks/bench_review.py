"""The review pages at 100,000 calls: list, filters, sort, a long call's page, the event lists.

    .venv/bin/python benchmarks/bench_review.py [--calls 100000 --logs 10000000]
    .venv/bin/python benchmarks/bench_review.py --calls 10000 --logs 1000000 \
        --database-url postgres://postgres@127.0.0.1:5432/bench_review

Builds a database of its own (a SQLite file in a temporary directory, kept
with `--keep` and reused with `--reuse FILE`; on PostgreSQL a database whose
name starts with `bench_`, created if missing and emptied first), fills it
with calls shaped like real ones (their review stored as the record writer
stores it), plants three missed barge-ins and one 10-minute call of 5,000
log rows, and times each admin page through Django's test client: median of
`--repeat` requests after one warm-up, and the page's number of queries.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.pgdb import fresh_postgres_database

CHUNK = 1000
BAD_CALLS = 3
LONG_CALL_ROWS = 5000


def _configure(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--logs", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", help="postgres://.../bench_<name> (default: SQLite)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    parser.add_argument("--reuse", help="a SQLite file a --keep run left: no populating")
    args = parser.parse_args(argv)
    if args.database_url:
        try:
            fresh_postgres_database(args.database_url)
        except ValueError as exc:
            parser.error(str(exc))
        os.environ["DATABASE_URL"] = args.database_url
    else:
        path = args.reuse or str(Path(tempfile.mkdtemp(prefix="bench-review-")) / "review.sqlite3")
        args.sqlite_path = path
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.dev_settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return args


ARGS = _configure() if __name__ == "__main__" else None

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from callcore.records import CallState  # noqa: E402
from calls.admin import CallSessionAdmin  # noqa: E402
from calls.models import BargeInEvent, CallFinding, CallSession, PlayoutLog  # noqa: E402
from calls.review.stored import review_calls  # noqa: E402


def sid(n: int) -> str:
    return f"CA{n:032d}"


def turn(n: int, at_ms: int, tail_barge_in: bool) -> list[tuple[str, int, str, dict[str, Any]]]:
    """One exchange as the bridge logs it: ~10 rows over ~6 s."""
    rid, item = f"resp_{n}", f"item_{n}"
    rows: list[tuple[str, int, str, dict[str, Any]]] = [
        ("response_started", at_ms, "", {"response_id": rid, "generation": n}),
        ("playout_started", at_ms + 300, "", {"response_id": rid, "item_id": item}),
        ("response_done", at_ms + 900, "", {"response_id": rid, "status": "completed"}),
    ]
    if tail_barge_in:
        onset = at_ms + 2900
        rows += [
            ("speech_started", at_ms + 3100, "playout_active_1700ms", {"audio_start_ms": onset}),
            (
                "barge_in",
                at_ms + 3100,
                "playout_active_1700ms",
                {
                    "response_id": rid,
                    "item_id": item,
                    "playout_remaining_ms": 1700,
                    "pending_ms": 0,
                    "unplayed_ms": 1700,
                    "audio_end_ms": 2600,
                    "reaction_ms": 0.5,
                    "speech_onset_offset_ms": onset,
                },
            ),
            ("truncated", at_ms + 3101, "", {"item_id": item, "audio_end_ms": 2600}),
            ("playout_ended", at_ms + 3101, "", {"response_id": rid, "audio_ms": 2800}),
        ]
    else:
        rows += [
            ("playout_ended", at_ms + 4800, "", {"response_id": rid, "audio_ms": 4500}),
            (
                "mark_stats",
                at_ms + 4800,
                "",
                {"response_id": rid, "estimate_error_ms": [4, -2, 6], "round_trip_ms": [80, 95]},
            ),
            ("speech_started", at_ms + 5600, "playout_ended_800ms_ago", {}),
            (
                "user_speech_ai_silent",
                at_ms + 5600,
                "playout_ended_800ms_ago",
                {"ms_since_playout_end": 800, "onset_ms_after_playout_end": 600},
            ),
        ]
    rows += [
        ("speech_stopped", at_ms + 6000, "", {}),
        ("conversation_turn", at_ms + 6001, "", {"role": "user", "text": "What time is it?"}),
    ]
    return rows


def call_rows(per_call: int) -> list[tuple[str, int, str, dict[str, Any]]]:
    rows = [("stream_started", 0, "", {}), ("model_session_opened", 40, "", {})]
    n = 0
    while len(rows) < per_call - 1:
        rows += turn(n, 500 + n * 6500, tail_barge_in=n % 3 == 1)
        n += 1
    rows = rows[: per_call - 1]
    rows.append(("stream_ended", rows[-1][1] + 500, "", {"end_reason": "caller_hangup"}))
    return rows


def populate(calls: int, logs: int) -> int:
    """Fill the database; returns the long call's pk."""
    per_call = max(8, logs // calls)
    script = call_rows(per_call)
    duration_ms = script[-1][1] + 1000
    barge_ins = sum(1 for kind, *_ in script if kind == "barge_in")
    silent = sum(1 for kind, *_ in script if kind == "user_speech_ai_silent")
    now = timezone.now()
    t0 = time.perf_counter()
    started_at = CallSession._meta.get_field("started_at")
    started_at.auto_now_add = False  # type: ignore[attr-defined]  # spread-out start times
    try:
        _populate_all(calls, script, now, duration_ms, barge_ins, silent, t0)
    finally:
        started_at.auto_now_add = True  # type: ignore[attr-defined]
    return _long_call(now)


def _populate_all(
    calls: int,
    script: list[tuple[str, int, str, dict[str, Any]]],
    now: datetime,
    duration_ms: int,
    barge_ins: int,
    silent: int,
    t0: float,
) -> None:
    for first in range(0, calls, CHUNK):
        numbers = range(first, min(first + CHUNK, calls))
        with transaction.atomic():
            _populate_chunk(numbers, script, now, duration_ms, barge_ins, silent)
        done = numbers.stop
        if done % (CHUNK * 10) == 0 or done == calls:
            print(
                f"  {done:>7} calls, {done * len(script):>9} log rows "
                f"({time.perf_counter() - t0:5.1f} s)",
                flush=True,
            )


def _populate_chunk(
    numbers: range,
    script: list[tuple[str, int, str, dict[str, Any]]],
    now: datetime,
    duration_ms: int,
    barge_ins: int,
    silent: int,
) -> None:
    calls = []
    for n in numbers:
        # One call every 50 s, newest first; 1 in 100 reacted slowly once.
        started = now - timedelta(seconds=50 * n)
        slow = n % 100 == 7
        calls.append(
            CallSession(
                call_sid=sid(n),
                from_number=f"+1555{n % 10_000_000:07d}",
                to_number="+15550000000",
                status=CallState.COMPLETED,
                started_at=started,
                stream_started_at=started,
                ended_at=started + timedelta(milliseconds=duration_ms),
                end_reason="caller_hangup" if n % 9 else "agent_hangup",
                responses=barge_ins + silent,
                ai_audio_ms=60_000,
                link_rtt_p50_ms=90,
                link_rtt_p95_ms=120,
                link_jitter_ms=8,
                link_samples=12,
                duration_ms=duration_ms,
                barge_in_count=barge_ins + (n % 5),
                ai_silent_count=silent,
                suspect_count=1 if slow else 0,
                suspects="slow_reaction" if slow else "",
                reviewed_at=now,
            )
        )
    created = CallSession.objects.bulk_create(calls)
    ops = connection.ops
    log_values = []
    event_values = []
    findings = []
    for call in created:
        base = call.started_at
        slow_left = bool(call.suspects)
        for kind, offset, status, details in script:
            at = ops.adapt_datetimefield_value(base + timedelta(milliseconds=offset))
            onset = details.get("onset_ms_after_playout_end")
            log_values.append((call.pk, kind, at, offset, status, json.dumps(details), onset))
            if kind == "barge_in":
                # A slow call's first barge-in took 62 ms (its finding says so).
                reaction, slow_left = (62.0 if slow_left else 0.5), False
                event_values.append(
                    (call.pk, at, offset, "speech_started", details["response_id"],
                     details["item_id"], 1700, 2600, reaction, 0, 1700, False,
                     details["speech_onset_offset_ms"], "", "", "{}")
                )  # fmt: skip
        if call.suspects:
            findings.append(CallFinding(call=call, rule="slow_reaction", offset_ms=3100,
                                        message="barge-in reaction 62.0 ms (> 50 ms)"))  # fmt: skip
    _insert(PlayoutLog, ["call_id", "kind", "occurred_at", "offset_ms", "playout_status",
                         "details", "onset_after_end_ms"], log_values)  # fmt: skip
    _insert(BargeInEvent, ["call_id", "occurred_at", "offset_ms", "trigger", "response_id",
                           "item_id", "playout_remaining_ms", "audio_end_ms", "reaction_ms",
                           "pending_ms", "unplayed_ms", "response_cancelled",
                           "speech_onset_offset_ms", "heard_text", "cut_text", "details"],
            event_values)  # fmt: skip
    CallFinding.objects.bulk_create(findings)


def _insert(model: Any, columns: list[str], values: list[tuple[Any, ...]]) -> None:
    """Plain INSERTs, many rows a statement: ten million ORM objects would take an hour."""
    if not values:
        return
    table = model._meta.db_table
    json_cast = "::jsonb" if connection.vendor == "postgresql" else ""
    row = "(" + ", ".join("%s" + (json_cast if c == "details" else "") for c in columns) + ")"
    per_statement = max(1, 900 // len(columns))  # SQLite's bound-parameter limit
    with connection.cursor() as cursor:
        for start in range(0, len(values), per_statement):
            chunk = values[start : start + per_statement]
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join(
                [row] * len(chunk)
            )
            cursor.execute(sql, [v for r in chunk for v in r])


def _long_call(now: datetime) -> int:
    """A 10-minute call with 5,000 log rows."""
    started = now - timedelta(minutes=30)
    call = CallSession.objects.create(call_sid="CA" + "f" * 32, status=CallState.COMPLETED)
    CallSession.objects.filter(pk=call.pk).update(
        started_at=started, stream_started_at=started, ended_at=started + timedelta(minutes=10),
        end_reason="caller_hangup", link_rtt_p50_ms=90, link_samples=40,
    )  # fmt: skip
    rows: list[tuple[str, int, str, dict[str, Any]]] = [("stream_started", 0, "", {})]
    n = 0
    while len(rows) < LONG_CALL_ROWS - 1:
        rows += turn(n, 500 + n * 6000, tail_barge_in=n % 2 == 1)
        n += 1
    rows = [r for r in rows if r[1] < 599_000][: LONG_CALL_ROWS - 1]
    # Mark statistics every 100 ms of audio fill the rest, as a busy call's log does.
    while len(rows) < LONG_CALL_ROWS - 1:
        offset = 1000 + len(rows) * 100 % 598_000
        rows.append(("mark_stats", offset, "", {"estimate_error_ms": [3], "round_trip_ms": [90]}))
    rows.sort(key=lambda r: r[1])
    rows.append(("stream_ended", 600_000, "", {"end_reason": "caller_hangup"}))
    PlayoutLog.objects.bulk_create(
        PlayoutLog(call=call, kind=k, occurred_at=started + timedelta(milliseconds=o),
                   offset_ms=o, playout_status=s, details=d)
        for k, o, s, d in rows
    )  # fmt: skip
    BargeInEvent.objects.bulk_create(
        BargeInEvent(call=call, occurred_at=started + timedelta(milliseconds=o), offset_ms=o,
                     playout_remaining_ms=d["playout_remaining_ms"], audio_end_ms=2600,
                     reaction_ms=0.5, unplayed_ms=1700, speech_onset_offset_ms=o - 200)
        for k, o, s, d in rows if k == "barge_in"
    )  # fmt: skip
    review_calls([call.pk])
    return call.pk


def plant_missed_barge_ins(calls: int) -> list[str]:
    """Three calls whose caller spoke before playout ended but was judged AI silent."""
    planted = [sid(n) for n in (calls // 7, calls // 2, calls - 3)]
    for call in CallSession.objects.filter(call_sid__in=planted):
        log = call.playout_logs.filter(kind="user_speech_ai_silent").first()
        assert log is not None
        log.details = {**log.details, "onset_ms_after_playout_end": -340}
        log.onset_after_end_ms = -340
        log.save(update_fields=["details", "onset_after_end_ms"])
    review_calls(
        list(CallSession.objects.filter(call_sid__in=planted).values_list("pk", flat=True))
    )
    return planted


def time_page(client: Client, label: str, url: str, repeat: int) -> float:
    client.get(url)  # warm: caches, the first query plan
    timings = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - t0)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    median_ms = statistics.median(timings) * 1000
    print(
        f"  {label:<44} median {median_ms:7.1f} ms  (min {min(timings) * 1000:6.1f}, "
        f"max {max(timings) * 1000:6.1f})  queries {len(queries):3d}  "
        f"{'ok' if median_ms <= 200 else 'OVER 200 ms'}",
        flush=True,
    )
    return median_ms


def main(args: argparse.Namespace) -> None:
    call_command("migrate", verbosity=0)
    if args.reuse is None:
        for model in (CallFinding, BargeInEvent, PlayoutLog, CallSession):
            model.objects.all().delete()
        print(f"database: {connection.vendor}; populating {args.calls} calls, ~{args.logs} rows")
        t0 = time.perf_counter()
        long_pk = populate(args.calls, args.logs)
        planted = plant_missed_barge_ins(args.calls)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"populated in {time.perf_counter() - t0:.0f} s; planted {', '.join(planted)}")
    else:
        long_pk = CallSession.objects.get(call_sid="CA" + "f" * 32).pk
    print(
        f"{CallSession.objects.count()} calls, {PlayoutLog.objects.order_by().count()} log rows, "
        f"{BargeInEvent.objects.order_by().count()} barge-ins"
    )
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True})
    user.is_superuser = True
    user.save()
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    column = CallSessionAdmin.list_display.index("barge_in_count") + 1
    calls_url = "/admin/calls/callsession/"
    pages = [
        ("call list, first page", calls_url),
        ("calls with a missed barge-in", f"{calls_url}?finding=missed_barge_in"),
        ("calls sorted by barge-ins", f"{calls_url}?o=-{column}"),
        ("calls: agent hangups, with barge-ins",
         f"{calls_url}?end_reason=agent_hangup&barge_ins=yes"),
        ("calls of 2 to 10 min, past 7 days", f"{calls_url}?" + urlencode(
            {"duration": "long", "started_at__gte": timezone.now() - timedelta(days=7)})),
        ("a 10-minute call's page (5,000 log rows)", f"{calls_url}{long_pk}/change/"),
        ("barge-ins, newest first", "/admin/calls/bargeinevent/"),
        ("barge-ins with reaction > 50 ms", "/admin/calls/bargeinevent/?reaction=over_50"),
        ("playout log, newest first", "/admin/calls/playoutlog/"),
        ("AI-silent speech begun before playout end",
         "/admin/calls/playoutlog/?kind__exact=user_speech_ai_silent&onset=before_end"),
        ("model errors", "/admin/calls/playoutlog/?kind__exact=model_error"),
        ("barge-ins of calls the AI ended",
         "/admin/calls/bargeinevent/?call_end_reason=agent_hangup"),
        ("log rows of calls the AI ended", "/admin/calls/playoutlog/?call_end_reason=agent_hangup"),
        ("calls with any finding", f"{calls_url}?finding=any"),
        ("calls found by SID prefix", f"{calls_url}?q=CA000000000000000000000000000500"),
        ("the long call's log", f"/admin/calls/playoutlog/?call={long_pk}"),
    ]  # fmt: skip
    print(f"admin pages, median of {args.repeat} (Django test client, server-side time):")
    over = [label for label, url in pages if time_page(client, label, url, args.repeat) > 200]
    print("every page within 200 ms" if not over else f"over 200 ms: {', '.join(over)}")
    if args.database_url is None and (args.keep or args.reuse):
        print(f"database kept: {args.sqlite_path} (--reuse it)")


if __name__ == "__main__":
    assert ARGS is not None
    try:
        main(ARGS)
    finally:
        if ARGS.database_url is None and not (ARGS.keep or ARGS.reuse):
            connection.close()
            Path(ARGS.sqlite_path).unlink(missing_ok=True)
            Path(ARGS.sqlite_path).parent.rmdir()
