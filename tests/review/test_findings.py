"""Pure findings and `--since` parsing, stepped by hand with a fixed `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calls.review.diagnostics import parse_since
from calls.review.findings import LogRow, Thresholds, diagnose_call, percentile

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def call_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "id": 1,
        "call_sid": "CA1",
        "status": "completed",
        "started_at": NOW - timedelta(minutes=5),
        "stream_started_at": None,
        "ended_at": NOW,
        "end_reason": "",
        "responses": 1,
        "ai_audio_ms": 1000,
    }
    return row | overrides


def diagnose(rows: list[LogRow], **call: Any) -> Any:
    return diagnose_call(call_row(**call), [], rows, Thresholds(), NOW)


def test_drains_pair_starts_with_completions_cancels_and_leftovers() -> None:
    rows: list[LogRow] = [
        (1, "drain_started", 1000, "", {"expected_wait_ms": 900}),
        (1, "hangup_cancelled", 1200, "", {"reason": "caller spoke"}),
        (1, "drain_started", 3000, "", {"expected_wait_ms": 700}),
        (
            1,
            "drain_completed",
            3700,
            "",
            {"expected_wait_ms": 700, "actual_wait_ms": 700, "final_mark_echoed": True},
        ),
        (1, "drain_started", 5000, "", {"expected_wait_ms": 400}),
    ]

    drains = diagnose(rows).drains

    assert [(d.started_offset_ms, d.outcome) for d in drains] == [
        (1000, "cancelled"),
        (3000, "completed"),
        (5000, "incomplete"),
    ]
    assert drains[0].cancel_reason == "caller spoke"
    assert drains[2].expected_wait_ms == 400
    assert diagnose(rows).suspects == []


def test_ai_silent_falls_back_to_the_logged_status() -> None:
    rows: list[LogRow] = [(1, "user_speech_ai_silent", 500, "playout_ended_400ms_ago", {})]

    (speech,) = diagnose(rows).silent_speech

    assert speech.ms_since_playout_end == 400
    assert [s.rule for s in diagnose(rows).suspects] == ["missed_barge_in"]


def test_estimate_quality_merges_every_mark_stats_row() -> None:
    rows: list[LogRow] = [
        (1, "mark_stats", 100, "", {"estimate_error_ms": [5, -40], "round_trip_ms": [60, 70]}),
        (1, "mark_stats", 900, "", {"estimate_error_ms": [20], "round_trip_ms": [300]}),
    ]

    quality = diagnose(rows).quality

    assert quality is not None
    assert (quality.marks, quality.median_error_ms, quality.p95_abs_error_ms) == (3, 5, 40)
    assert (quality.median_round_trip_ms, quality.p95_round_trip_ms) == (70, 300)
    assert diagnose([]).quality is None


def test_streaming_calls_are_stale_after_the_threshold_from_stream_start() -> None:
    fresh = diagnose(
        [], status="streaming", ended_at=None, stream_started_at=NOW - timedelta(minutes=59)
    )
    stale = diagnose(
        [], status="streaming", ended_at=None, stream_started_at=NOW - timedelta(minutes=61)
    )

    assert fresh.suspects == []
    assert [s.rule for s in stale.suspects] == ["missing_ended_at"]
    assert diagnose([], status="ringing", ended_at=None).suspects == []


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 95) is None
    assert percentile([7], 95) == 7
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile(list(range(1, 21)), 50) == 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("30m", NOW - timedelta(minutes=30)),
        ("7d", NOW - timedelta(days=7)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2025-05-30", datetime(2025, 5, 30, tzinfo=UTC)),
        ("2025-05-30T08:15", datetime(2025, 5, 30, 8, 15, tzinfo=UTC)),
        ("2025-05-30T08:15:00+02:00", datetime(2025, 5, 30, 6, 15, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "2x", "h2", "-3h", "2025-02-30", "soon"])
def test_parse_since_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        parse_since(text, NOW)


def interruption(offset_ms: int, stopped_hearing_ms: int | None, **details: Any) -> LogRow:
    figures = {
        "verdict": "interruption",
        "decided_by": "length",
        "decision_ms": 700,
        "speech_onset_offset_ms": offset_ms - 700,
        "voice_ms": 700,
        "words": "",
        "paused": False,
        "interruptible": True,
        "stopped_hearing_ms": stopped_hearing_ms,
    }
    return (1, "turn_verdict", offset_ms, "", figures | details)


def test_a_resumed_answer_with_a_long_gap_is_suspect_above_its_threshold() -> None:
    rows: list[LogRow] = [
        (1, "answer_paused", 1000, "", {"item_id": "item_1", "heard_ms": 800, "requeued_ms": 400}),
        (1, "answer_resumed", 1300, "", {"gap_ms": 300}),
        (1, "answer_paused", 2000, "", {"item_id": "item_1", "heard_ms": 1500}),
        (1, "answer_resumed", 2400, "", {"gap_ms": 301}),
        (1, "answer_resumed", 5000, "", {"gap_ms": None}),
    ]

    suspects = diagnose(rows).suspects
    lenient = diagnose_call(call_row(), [], rows, Thresholds(long_resume_gap_ms=400), NOW)

    assert [(s.rule, s.offset_ms, s.message) for s in suspects] == [
        ("long_resume_gap", 2400, "answer resumed after 301 ms of silence (> 300 ms)")
    ]
    assert lenient.suspects == []


def test_a_long_resume_gap_says_how_much_of_it_waited_for_the_clears_marks() -> None:
    rows: list[LogRow] = [
        (1, "answer_paused", 1000, "", {"item_id": "item_1", "heard_ms": 800, "cleared": True}),
        (1, "answer_resumed", 1420, "", {"gap_ms": 420, "waits_ms": 150}),
    ]

    [suspect] = diagnose(rows).suspects
    assert suspect.message == (
        "answer resumed after 420 ms of silence (> 300 ms); 150 ms of it waiting for the "
        "clear's marks"
    )


def test_an_interruption_heard_late_is_suspect_only_where_the_caller_could_cut_in() -> None:
    rows: list[LogRow] = [
        interruption(1000, 450),
        interruption(2000, 451),
        interruption(3000, 2000, interruptible=False),  # a passage heard whole: it goes on
        interruption(4000, None),
        (1, "turn_verdict", 5000, "", {"verdict": "backchannel", "stopped_hearing_ms": 900}),
    ]

    suspects = diagnose(rows).suspects
    lenient = diagnose_call(call_row(), [], rows, Thresholds(late_interruption_ms=500), NOW)

    assert [(s.rule, s.offset_ms, s.message) for s in suspects] == [
        (
            "late_interruption",
            2000,
            "the caller heard the AI for 451 ms after they began to interrupt "
            "(> 450 ms; decided by length in 700 ms)",
        )
    ]
    assert lenient.suspects == []


def test_the_verdicts_and_pauses_are_read_with_the_call() -> None:
    rows: list[LogRow] = [
        (1, "answer_paused", 1000, "", {"item_id": "item_1", "heard_ms": 800, "requeued_ms": 400}),
        interruption(1500, 500, paused=True, words="hold on"),
    ]

    diagnostics = diagnose(rows)

    (verdict,) = diagnostics.turn_verdicts
    assert (verdict.offset_ms, verdict.verdict, verdict.words) == (1500, "interruption", "hold on")
    assert (verdict.speech_onset_offset_ms, verdict.stopped_hearing_ms) == (800, 500)
    (pause,) = diagnostics.pauses
    assert (pause.paused_offset_ms, pause.outcome, pause.ended_offset_ms) == (
        1000,
        "interrupted",
        1500,
    )
    as_json = diagnostics.to_json()
    assert as_json["turn_verdicts"][0]["decided_by"] == "length"
    assert as_json["pauses"][0]["heard_ms"] == 800
