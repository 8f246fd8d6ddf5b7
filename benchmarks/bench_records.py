"""The database work of one call, measured alone: its webhook's row, its claim, its
records' writes, its review.

    .venv/bin/python benchmarks/bench_records.py [--calls 100] [--repeat 5] [--batch 25]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_records] [--root CHECKOUT]

Each call is a bench call's (`bench_calls.py`): its row made by the voice
webhook (`calls.views._answer`), the stream's claim
(`calls.live.admission._claim`), its 21 playout-log rows, one barge-in and
two call updates written by `calls.live.writer.write_batch` with `--batch`
calls' rows a transaction, then `calls.review.stored.review_calls` on
`--batch` calls at a time. It prints the CPU time (this process's, the
database's excluded) per call of each, median of `--repeat` runs (new calls
each run, in one database made for the benchmark). `--root` measures another
checkout (a worktree of an earlier commit) with the same calls, for
before/after figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.pgdb import fresh_postgres_database  # noqa: E402

RESPONSE, ITEM = "resp_4601100000000000062", "item_4601100000000000062"


def call_rows(index: int) -> list[tuple[str, int, str, dict[str, Any]]]:
    """A bench call's playout log: greeting, tail barge-in, answer, hang-up."""
    first, second = f"{RESPONSE}{index % 10}a", f"{RESPONSE}{index % 10}b"
    errors = [(i * 7) % 27 - 13 for i in range(26)]
    trips = [200 + (i * 13) % 90 for i in range(26)]
    return [
        ("stream_started", 0, "", {}),
        ("model_session_opened", 7, "", {"setup_ms": 7, "connect_ms": 65, "opened_ahead": True}),
        ("response_started", 13, "no_playout_ts", {"response_id": first, "generation": 0}),
        ("playout_started", 28, "playout_active_100ms", {"response_id": first, "item_id": ITEM}),
        (
            "conversation_turn",
            675,
            "",
            {"seq": 1, "role": "assistant", "item_id": ITEM, "text": "Hello, how can I help?"},
        ),
        (
            "response_done",
            675,
            "playout_active_3348ms",
            {"response_id": first, "status": "completed", "audio_ms": 4000},
        ),
        (
            "conversation_turn",
            2677,
            "",
            {"seq": 1, "role": "assistant", "item_id": ITEM, "text": "Hello, how"},
        ),
        (
            "playout_ended",
            2677,
            "no_playout_ts",
            {
                "response_id": first,
                "audio_end_offset_ms": 2677,
                "audio_ms": 2920,
                "interrupted": True,
            },
        ),
        (
            "mark_stats",
            2677,
            "",
            {
                "response_id": first,
                "count": 26,
                "estimate_error_ms": errors,
                "round_trip_ms": trips,
            },
        ),
        (
            "barge_in",
            2677,
            "playout_active_1356ms",
            {
                "response_id": first,
                "item_id": ITEM,
                "playout_remaining_ms": 1356,
                "pending_ms": 1080,
                "unplayed_ms": 275,
                "reaction_ms": 0.145,
                "audio_end_ms": 2644,
                "response_cancelled": False,
                "speech_onset_offset_ms": 2523,
            },
        ),
        ("truncated", 2677, "", {"item_id": ITEM, "audio_end_ms": 2644}),
        ("speech_stopped", 3717, "no_playout_ts", {"audio_end_ms": 3700}),
        (
            "conversation_turn",
            3717,
            "",
            {"seq": 2, "role": "user", "item_id": "item_user", "text": "When are you open?"},
        ),
        ("response_started", 3717, "no_playout_ts", {"response_id": second, "generation": 1}),
        ("playout_started", 3743, "playout_active_140ms", {"response_id": second, "item_id": ITEM}),
        (
            "conversation_turn",
            4052,
            "",
            {"seq": 3, "role": "assistant", "item_id": ITEM, "text": "Until six."},
        ),
        (
            "response_done",
            4052,
            "playout_active_1689ms",
            {"response_id": second, "status": "completed", "audio_ms": 2000},
        ),
        (
            "playout_ended",
            5837,
            "playout_ended_82ms_ago",
            {"response_id": second, "audio_end_offset_ms": 5755, "audio_ms": 2000},
        ),
        (
            "mark_stats",
            5837,
            "",
            {"response_id": second, "count": 20, "estimate_error_ms": errors[:20]},
        ),
        (
            "stream_ended",
            7737,
            "playout_ended_1983ms_ago",
            {"end_reason": "caller_hangup", "dtmf_digits": 0, "protocol_errors": 0},
        ),
    ]


BARGE_IN = {
    "trigger": "speech_started",
    "response_id": RESPONSE,
    "item_id": ITEM,
    "playout_remaining_ms": 1356,
    "audio_end_ms": 2644,
    "reaction_ms": 0.145,
    "pending_ms": 1080,
    "unplayed_ms": 275,
    "response_cancelled": False,
    "speech_onset_offset_ms": 2523,
    "heard_at_onset_ms": 2492,
    "details": {"speaking_reason": "playout", "link_rtt_ms": 6, "link_jitter_ms": 20},
    "cut_text": "can I help?",
    "heard_text": "Hello, how",
}


def claim(start: Any) -> int:
    """The stream's claim of its call, as this checkout makes it (`--root` may be older)."""
    try:
        from calls.live.admission import _claim
    except ImportError:  # before the admission had a module of its own
        from calls.consumers import _begin_stream

        call = _begin_stream(start.call_sid, start)
        assert not isinstance(call, int), call
        return int(call.pk)
    claimed = _claim(start)
    assert isinstance(claimed, tuple), claimed
    return claimed[0]


def one_run(calls: int, batch_calls: int, run: int) -> dict[str, float]:
    """In a configured Django: claim, write and review `calls` calls; CPU ms per call."""
    from callcore.protocol.twilio import Start
    from calls.live.writer import _Pending, write_batch
    from calls.models import CallSession
    from calls.review.stored import review_calls
    from calls.views import _answer

    account = "AC" + "1" * 32
    sids = [f"CA{run:04d}{i:028d}" for i in range(calls)]
    fields = {"account_sid": account, "from_number": "+15550001111", "to_number": "+15550002222"}
    started = time.process_time()
    for sid in sids:
        _answer(sid, {**fields, "direction": "inbound"})
    answer_s = time.process_time() - started
    started = time.process_time()
    pks = []
    for i, sid in enumerate(sids):
        stream = f"MZ{run:04d}{i:028d}"
        start = Start(stream, sid, account, {}, "audio/x-mulaw", 8000, 1)
        pks.append(claim(start))
    claim_s = time.process_time() - started

    begin = datetime.now(UTC)
    write_s = 0.0
    for first in range(0, calls, batch_calls):
        batch = _Pending()
        for i, pk in enumerate(pks[first : first + batch_calls], start=first):
            for kind, offset, status, details in call_rows(i):
                at = begin + timedelta(milliseconds=offset)
                batch.logs.append((pk, kind, at, offset, status, details))
            batch.barge_ins.append((pk, begin + timedelta(milliseconds=2677), 2677, BARGE_IN))
            batch.calls[pk] = {
                "status": "completed",
                "end_reason": "caller_hangup",
                "ended_at": begin + timedelta(milliseconds=7737),
            }
        started = time.process_time()
        write_batch(batch)
        write_s += time.process_time() - started

    started = time.process_time()
    for first in range(0, calls, batch_calls):
        review_calls(pks[first : first + batch_calls])
    review_s = time.process_time() - started
    assert CallSession.objects.filter(pk__in=pks, reviewed_at__isnull=False).count() == calls
    return {
        "webhook": 1000 * answer_s / calls,
        "claim": 1000 * claim_s / calls,
        "write": 1000 * write_s / calls,
        "review": 1000 * review_s / calls,
    }


def child(args: argparse.Namespace) -> None:
    """The measuring process: Django set up on `--root`'s code and a fresh database."""
    sys.path.insert(0, str(args.root))
    os.chdir(args.root)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results = [one_run(args.calls, args.batch, run) for run in range(args.repeat)]
    for part in ("webhook", "claim", "write", "review"):
        values = [result[part] for result in results]
        print(
            f"{part:7s} {statistics.median(values):6.2f} ms CPU a call (runs {values_text(values)})"
        )


def values_text(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=25, help="calls a transaction / a review")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.database_url:
        try:
            fresh_postgres_database(args.database_url)
        except ValueError as exc:
            parser.error(str(exc))
    with tempfile.TemporaryDirectory(prefix="bench-records-") as workdir:
        url = args.database_url or f"sqlite:///{workdir}/records.sqlite3"
        env = dict(
            os.environ,
            DATABASE_URL=url,
            DJANGO_SETTINGS_MODULE="config.dev_settings",
            PYTHONPATH=str(args.root.resolve()),
            LOG_LEVEL="WARNING",
        )
        print(
            f"{args.calls} calls, {args.batch} a transaction, {args.root} on {url.split('@')[-1]}"
        )
        subprocess.run(
            [sys.executable, __file__, "--child", "--calls", str(args.calls), "--repeat",
             str(args.repeat), "--batch", str(args.batch), "--root", str(args.root.resolve())],
            env=env, check=True,
        )  # fmt: skip


if __name__ == "__main__":
    main()
