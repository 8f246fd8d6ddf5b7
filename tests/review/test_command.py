"""`drain_diagnostics` on real rows: table, JSON, each suspect rule, selection and errors."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.models import CallStatus
from calls.review import diagnostics
from tests.review.conftest import GOODBYE_SID, goodbye_call, new_call, with_link

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("drain_diagnostics", *args, stdout=out)
    return out.getvalue()


def run_json(*args: str) -> dict[str, Any]:
    return json.loads(run("--json", *args))  # type: ignore[no-any-return]


def rules(report: dict[str, Any], sid: str) -> list[str]:
    (call,) = [c for c in report["calls"] if c["call_sid"] == sid]
    return [suspect["rule"] for suspect in call["suspects"]]


def test_table_shows_the_figures_and_the_suspects() -> None:
    goodbye_call()

    out = run()

    assert GOODBYE_SID in out
    assert "playout_remaining 4300 ms  audio_end 3000 ms  reaction 0.4 ms" in out
    assert 'heard: "Your order ships on"  cut: "Monday by express courier."' in out
    assert (
        "link       round trip p50 120 / p95 180 ms  jitter 15 ms  (6 samples)  "
        "estimate |error| p95 25 ms" in out
    )
    assert "AI silent  at   9.000s  playout_ended_100ms_ago" in out
    assert "expected 1500 ms  actual 1500 ms  final mark NOT echoed  cut off 300 ms" in out
    assert "! missed_barge_in" in out
    assert "! drain_before_final_mark" in out
    assert "+10/30" in out  # estimate error: median +10 ms, p95 |error| 30 ms
    assert out.rstrip().endswith("1 call(s), 1 with suspects.")


def test_json_has_every_figure() -> None:
    goodbye_call()

    (call,) = run_json("--call", GOODBYE_SID)["calls"]

    assert (call["responses"], call["ai_audio_ms"], call["status"]) == (3, 9100, "completed")
    assert call["barge_ins"] == [
        {
            "offset_ms": 4200,
            "response_id": "resp_1",
            "playout_remaining_ms": 4300,
            "audio_end_ms": 3000,
            "reaction_ms": 0.4,
            "pending_ms": 1200,
            "unplayed_ms": 3100,
            "response_cancelled": True,
            "heard_text": "Your order ships on",
            "cut_text": "Monday by express courier.",
        }
    ]
    assert call["link"] == {
        "rtt_p50_ms": 120,
        "rtt_p95_ms": 180,
        "jitter_ms": 15,
        "samples": 6,
        "estimate_error_p95_ms": 25,
    }
    assert call["silent_speech"] == [
        {
            "offset_ms": 9000,
            "playout_status": "playout_ended_100ms_ago",
            "ms_since_playout_end": 100,
            "playout_active": False,
            "onset_ms_after_playout_end": None,
        }
    ]
    (drain,) = call["drains"]
    assert drain["outcome"] == "completed"
    assert (drain["expected_wait_ms"], drain["actual_wait_ms"], drain["cut_off_ms"]) == (
        1500,
        1500,
        300,
    )
    assert call["quality"] == {
        "marks": 3,
        "median_error_ms": 10,
        "p95_abs_error_ms": 30,
        "median_round_trip_ms": 90,
        "p95_round_trip_ms": 120,
    }
    assert call["ended_at"].startswith(str(timezone.now().year))


def test_missed_barge_in_only_within_the_window() -> None:
    new_call("CA-near").ai_silent(3000, ms_since_end=400).save()
    new_call("CA-far").ai_silent(3000, ms_since_end=600).save()
    new_call("CA-none").ai_silent(3000, ms_since_end=None).save()
    new_call("CA-active").log("user_speech_ai_silent", 3000, "playout_active_800ms").save()

    report = run_json()
    wide = run_json("--suspect-window-ms", "2000")

    assert rules(report, "CA-near") == ["missed_barge_in"]
    assert rules(report, "CA-far") == []
    assert rules(report, "CA-none") == []
    assert rules(report, "CA-active") == ["missed_barge_in"]
    assert rules(wide, "CA-far") == ["missed_barge_in"]


def test_a_known_speech_onset_decides_over_the_window() -> None:
    """The VAD reports speech late; where it really began is the better evidence."""
    began_before = {"onset_ms_after_playout_end": -120}
    began_after = {"onset_ms_after_playout_end": 80}
    new_call("CA-overlap").log(
        "user_speech_ai_silent", 3000, "playout_ended_900ms_ago", ms_since_playout_end=900,
        **began_before,
    ).save()  # fmt: skip
    new_call("CA-turn").log(
        "user_speech_ai_silent", 3000, "playout_ended_300ms_ago", ms_since_playout_end=300,
        **began_after,
    ).save()  # fmt: skip

    report = run_json()

    assert rules(report, "CA-overlap") == ["missed_barge_in"]
    assert rules(report, "CA-turn") == []


def test_drain_that_ended_before_the_final_mark() -> None:
    new_call("CA-cut").drain(1000, actual_ms=900, echoed=False, cut_off_ms=600).save()
    new_call("CA-ok").drain(1000, actual_ms=1400, echoed=True, cut_off_ms=0).save()

    report = run_json()

    assert rules(report, "CA-cut") == ["drain_before_final_mark"]
    assert rules(report, "CA-ok") == []


def test_slow_barge_in_reaction_with_its_threshold() -> None:
    new_call("CA-slow").barge_in(2000, remaining_ms=3000, reaction_ms=80.0).save()
    new_call("CA-fast").barge_in(2000, remaining_ms=3000, reaction_ms=3.0).save()

    report = run_json()
    lenient = run_json("--slow-reaction-ms", "100")

    assert rules(report, "CA-slow") == ["slow_reaction"]
    assert rules(report, "CA-fast") == []
    assert rules(lenient, "CA-slow") == []


def test_slow_or_unstable_links_with_their_thresholds() -> None:
    with_link(new_call("CA-slow").save(), rtt_p50=350, rtt_p95=520, jitter=30)
    with_link(new_call("CA-shaky").save(), rtt_p50=150, rtt_p95=300, jitter=95)
    with_link(new_call("CA-fine").save(), rtt_p50=150, rtt_p95=220, jitter=20)
    with_link(new_call("CA-unmeasured").save(), rtt_p50=150, rtt_p95=220, jitter=None)

    report = run_json()
    lenient = run_json("--slow-link-ms", "600", "--unstable-link-ms", "100")

    assert rules(report, "CA-slow") == ["slow_link"]
    assert rules(report, "CA-shaky") == ["slow_link"]
    assert rules(report, "CA-fine") == []
    assert rules(report, "CA-unmeasured") == []
    assert rules(lenient, "CA-slow") == []
    assert rules(lenient, "CA-shaky") == []


def test_calls_that_ended_without_ended_at() -> None:
    old = timezone.now() - timedelta(hours=2)
    new_call("CA-final", ended=False).save()
    new_call("CA-stale", status=CallStatus.STREAMING, started_at=old, ended=False).save()
    new_call("CA-live", status=CallStatus.STREAMING, ended=False).save()

    report = run_json()

    assert rules(report, "CA-final") == ["missing_ended_at"]
    assert rules(report, "CA-stale") == ["missing_ended_at"]
    assert rules(report, "CA-live") == []


def test_selection_by_last_since_and_suspects_only() -> None:
    now = timezone.now()
    for hours in (1, 3, 30):
        new_call(f"CA-{hours}h", started_at=now - timedelta(hours=hours)).save()
    goodbye_call()

    def sids(*args: str) -> list[str]:
        return [c["call_sid"] for c in run_json(*args)["calls"]]

    assert sids("--last", "2") == [GOODBYE_SID, "CA-1h"]
    assert sids("--since", "2h") == [GOODBYE_SID, "CA-1h"]
    assert sids("--since", "2d", "--last", "3") == [GOODBYE_SID, "CA-1h", "CA-3h"]
    assert sids("--since", (now + timedelta(days=1)).date().isoformat()) == []
    assert len(sids("--since", (now - timedelta(days=3)).date().isoformat())) == 4
    assert sids("--since", (now - timedelta(hours=4)).isoformat()) == [
        GOODBYE_SID,
        "CA-1h",
        "CA-3h",
    ]
    assert sids("--suspects-only") == [GOODBYE_SID]


def test_default_is_the_twenty_most_recent() -> None:
    now = timezone.now()
    for minutes in range(25):
        new_call(f"CA-{minutes:02d}", started_at=now - timedelta(minutes=minutes)).save()

    calls = run_json()["calls"]

    assert [c["call_sid"] for c in calls] == [f"CA-{m:02d}" for m in range(20)]


def test_no_calls_is_not_an_error() -> None:
    assert run() == "No calls selected.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--call", "CA-missing"], "no call with SID 'CA-missing'"),
        (["--since", "yesterday"], "--since: cannot read 'yesterday'"),
        (["--since", "2025-13-45"], "--since: cannot read '2025-13-45'"),
        (["--last", "0"], "'0' must be 1 or more"),
        (["--last", "many"], "'many' is not a whole number"),
        (["--suspect-window-ms", "-5"], "'-5' must be 0 or more"),
        (["--slow-reaction-ms", "fast"], "'fast' is not a number"),
        (["--call", "CA1", "--last", "3"], "cannot be combined"),
    ],
)
def test_bad_arguments_are_command_errors(args: list[str], message: str) -> None:
    goodbye_call()

    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run(*args)


def _populate(calls: int, prefix: str = "CA-bulk") -> None:
    for n in range(calls):
        goodbye_call(f"{prefix}-{n:04d}")


@pytest.mark.parametrize("selection", [[], ["--since", "1d"], ["--call", "CA-bulk-0001"]])
def test_queries_do_not_grow_with_calls_or_rows(
    selection: list[str], django_assert_max_num_queries: Any
) -> None:
    _populate(3)
    with CaptureQueriesContext(connection) as few:
        run_json(*selection)
    _populate(22, "CA-more")

    with django_assert_max_num_queries(3), CaptureQueriesContext(connection) as many:
        run_json(*selection)

    assert len(many) == len(few)


def test_large_selections_use_a_subquery_in_the_same_three_queries(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    monkeypatch.setattr(diagnostics, "ID_LIST_LIMIT", 2)
    _populate(4)

    with django_assert_num_queries(3) as captured:
        report = run_json("--last", "3")

    assert [c["call_sid"] for c in report["calls"]] == [f"CA-bulk-{n:04d}" for n in (3, 2, 1)]
    assert all(len(c["barge_ins"]) == 1 for c in report["calls"])
    assert "IN (SELECT" in captured.captured_queries[-1]["sql"].upper()
