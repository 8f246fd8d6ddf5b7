"""`drain_diagnostics` on real rows: text, JSON, each suspect rule, selection and errors."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from callcore.records import CallState
from calls.models import BargeInEvent, CallSession
from calls.review import diagnostics
from tests.callbridge import configure
from tests.review.conftest import (
    GOODBYE_SID,
    SOUNDS_SID,
    goodbye_call,
    new_call,
    sounds_call,
    with_link,
)

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


def block(out: str, sid: str) -> list[str]:
    """The lines of one call's block in the text output."""
    (found,) = [b for b in out.split("\n\n") if b.startswith(sid + "  ")]
    return found.splitlines()


def test_text_shows_the_figures_and_the_suspects() -> None:
    goodbye_call()

    out = run()

    header, link, admin, *events = block(out, GOODBYE_SID)
    assert header.startswith(f"{GOODBYE_SID}  completed (caller_goodbye)  started ")
    assert header.endswith("  20.0 s  3 responses")
    assert link == (
        "  link round trip p50 120 / p95 180 ms  jitter 15 ms  (6 samples)  "
        "estimate |error| p95 25 ms"
    )
    assert admin.startswith("  admin /admin/calls/callsession/")
    assert events == [
        "   4.200 s  barge-in   onset 4500 ms before playout end  reaction 0.4 ms  "
        "4300 ms left  audio_end 3000 ms  cancelled",
        '                       heard "Your order ships on"  cut "Monday by express courier."',
        "   9.000 s  AI silent  onset unknown  playout_ended_100ms_ago",
        "   9.000 s  ! missed_barge_in  speech judged AI silent 100 ms after playout ended",
        "  12.100 s  drain      expected 1500 ms  actual 1500 ms  final mark NOT echoed  "
        "cut off 300 ms",
        "  13.600 s  ! drain_before_final_mark  drain ended before the final mark echo "
        "(300 ms cut off)",
    ]
    assert out.rstrip().endswith(
        "Summary: 1 call(s) examined, 1 with suspects "
        "(missed_barge_in 1, drain_before_final_mark 1)."
    )


def test_caller_sounds_are_counted_and_listed_in_time_order_with_their_suspects() -> None:
    sounds_call()

    out = run()

    _, _, sounds, admin, *events = block(out, SOUNDS_SID)
    assert sounds == (
        "  caller sounds 4 (backchannel 1, noise 1, echo 1, interruption 1)  "
        "answer paused 2, resumed 1"
    )
    assert admin.startswith("  admin /admin/calls/callsession/")
    assert events == [
        "   2.000 s  paused     item item_1  heard 1400 ms  requeued 900 ms",
        "   2.450 s  verdict    backchannel  by backchannel_words  decided 1200 ms  voice 360 ms  "
        'words "uh-huh"  paused',
        "   2.450 s  resumed    gap 420 ms",
        "   2.450 s  ! long_resume_gap  answer resumed after 420 ms of silence (> 300 ms)",
        "   4.000 s  verdict    noise  by not_speech  decided 300 ms  voice 120 ms",
        "   5.000 s  verdict    echo  by echo  decided 250 ms  voice 200 ms",
        "   6.100 s  paused     item item_1  heard 5500 ms  requeued 900 ms  then interrupted",
        "   6.400 s  verdict    interruption  by length  decided 900 ms  stopped hearing 600 ms  "
        'voice 900 ms  words "wait, stop"',
        "                       paused",
        "   6.400 s  barge-in   onset 2800 ms before playout end  reaction 0.4 ms  2600 ms left  "
        "audio_end 3000 ms  cancelled",
        '                       heard "Your order ships on"  cut "Monday by express courier."',
        "   6.400 s  ! late_interruption  the caller heard the AI for 600 ms after they began to "
        "interrupt (> 450 ms; decided by",
        "                                 length in 900 ms)",
    ]
    assert out.rstrip().endswith(
        "Summary: 1 call(s) examined, 1 with suspects (long_resume_gap 1, late_interruption 1)."
    )


def test_caller_sounds_in_json_with_their_thresholds() -> None:
    sounds_call()

    report = run_json()
    lenient = run_json("--long-resume-gap-ms", "420", "--late-interruption-ms", "600")

    (call,) = report["calls"]
    assert call["turn_verdict_counts"] == {
        "backchannel": 1,
        "noise": 1,
        "echo": 1,
        "interruption": 1,
    }
    assert [
        (v["offset_ms"], v["verdict"], v["decided_by"], v["decision_ms"], v["stopped_hearing_ms"])
        for v in call["turn_verdicts"]
    ] == [
        (2450, "backchannel", "backchannel_words", 1200, None),
        (4000, "noise", "not_speech", 300, None),
        (5000, "echo", "echo", 250, None),
        (6400, "interruption", "length", 900, 600),
    ]
    assert call["turn_verdicts"][0]["words"] == "uh-huh"
    assert call["turn_verdicts"][0]["speech_onset_offset_ms"] == 1250
    assert call["pauses"] == [
        {
            "paused_offset_ms": 2000,
            "outcome": "resumed",
            "ended_offset_ms": 2450,
            "gap_ms": 420,
            "item_id": "item_1",
            "heard_ms": 1400,
            "requeued_ms": 900,
            "cleared": None,
            "stop_in_ms": None,
            "waits_ms": None,
        },
        {
            "paused_offset_ms": 6100,
            "outcome": "interrupted",
            "ended_offset_ms": 6400,
            "gap_ms": None,
            "item_id": "item_1",
            "heard_ms": 5500,
            "requeued_ms": 900,
            "cleared": None,
            "stop_in_ms": None,
            "waits_ms": None,
        },
    ]
    assert rules(report, SOUNDS_SID) == ["late_interruption", "long_resume_gap"]
    assert (
        report["thresholds"]["long_resume_gap_ms"],
        report["thresholds"]["late_interruption_ms"],
    ) == (300, 450)
    assert rules(lenient, SOUNDS_SID) == []
    assert (
        lenient["thresholds"]["long_resume_gap_ms"],
        lenient["thresholds"]["late_interruption_ms"],
    ) == (420, 600)


def test_the_new_rules_select_calls() -> None:
    sounds_call()
    goodbye_call()

    late = run_json("--rule", "late_interruption")
    gap = run("--rule", "long_resume_gap")

    assert [c["call_sid"] for c in late["calls"]] == [SOUNDS_SID]
    assert rules(late, SOUNDS_SID) == ["late_interruption"]
    assert late["suspect_calls_by_rule"]["late_interruption"] == 1
    assert late["suspect_calls_by_rule"]["long_resume_gap"] == 0
    assert GOODBYE_SID not in gap
    assert "! long_resume_gap  answer resumed after 420 ms" in gap
    assert "late_interruption" not in "\n".join(block(gap, SOUNDS_SID))


def test_without_a_measured_link_the_marks_give_the_estimate_quality() -> None:
    new_call("CA-marks").log(
        "mark_stats", 900, estimate_error_ms=[10, -5, 30], round_trip_ms=[80, 90, 120]
    ).save()

    (_, link, *_) = block(run(), "CA-marks")

    assert link == (
        "  link not measured  marks: round trip median 90 ms  estimate |error| p95 30 ms  "
        "median error +10 ms"
    )


def test_started_at_is_shown_to_the_second_in_the_current_time_zone() -> None:
    new_call("CA-winter", started_at=datetime(2025, 1, 15, 12, 0, 0, 250000, tzinfo=UTC)).save()

    with timezone.override("Europe/Paris"):
        out = run("--since", "2025-01-01")

    assert "  started 2025-01-15 13:00:00 CET  20.0 s  " in block(out, "CA-winter")[0]


def test_events_are_in_time_order_whatever_their_kind() -> None:
    new_call("CA-order", ended=False).barge_in(5000, remaining_ms=2000).drain(
        7000, actual_ms=900, echoed=True, cut_off_ms=0
    ).ai_silent(2000, ms_since_end=None).save()

    lines = block(run(), "CA-order")[3:]
    events = [line.split()[:3] for line in lines if line[:10].strip()]

    assert events == [
        ["-", "!", "missing_ended_at"],  # call-wide suspects come first
        ["2.000", "s", "AI"],
        ["5.000", "s", "barge-in"],
        ["7.000", "s", "drain"],
    ]


def test_the_speech_onset_is_shown_against_the_playout_end() -> None:
    for sid, onset in (("CA-overlap", -340), ("CA-turn", 80), ("CA-edge", 0)):
        new_call(sid).log(
            "user_speech_ai_silent", 3000, "playout_ended_900ms_ago", ms_since_playout_end=900,
            onset_ms_after_playout_end=onset,
        ).save()  # fmt: skip

    out = run()

    assert "3.000 s  AI silent  onset 340 ms before playout end  playout_ended_900ms_ago" in out
    assert "3.000 s  AI silent  onset 80 ms after playout end" in out
    assert "3.000 s  AI silent  onset at playout end" in out


def test_every_line_fits_120_columns_on_a_busy_call() -> None:
    sid = "CA" + "f" * 62
    builder = new_call(sid, ended=False).ai_silent(100, ms_since_end=None)
    for n in range(40):
        builder.barge_in(1000 + n * 700, remaining_ms=123456, reaction_ms=1234.5678)
        builder.ai_silent(1300 + n * 700, ms_since_end=n * 20)
        builder.drain(1400 + n * 700, actual_ms=12, echoed=False, cut_off_ms=987654)
    call = with_link(builder.save(), rtt_p50=12345, rtt_p95=123456, jitter=99999)
    CallSession.objects.filter(pk=call.pk).update(
        status=CallState.FAILED, end_reason="twilio_" + "x" * 57
    )
    heard = " ".join(f"heard{n}" for n in range(200))
    cut = " ".join(f"cut{n}" for n in range(200))
    BargeInEvent.objects.filter(call=call).update(heard_text=heard, cut_text=cut)

    out = run("--base-url", "https://calls.example.com")

    lines = out.splitlines()
    assert len(lines) > 200
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    heard_lines = [line for line in lines if line.lstrip().startswith('heard "')]
    assert len(heard_lines) == 40
    # The words either side of the cut point survive; the rest gives way to an ellipsis.
    assert heard_lines[0].strip().startswith('heard "…')
    assert 'heard198 heard199"  cut "cut0 cut1 ' in heard_lines[0]
    assert re.search(r' cut "(cut\d+ )+cut\d+…"$', heard_lines[0])  # whole words only
    assert heard_lines[0].strip().startswith('heard "…heard')


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
            # The caller began 200 ms before the barge-in, which had 4300 ms left to play.
            "onset_ms_after_playout_end": -4500,
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
    assert call["duration_s"] == 20.0
    pk = CallSession.objects.get(call_sid=GOODBYE_SID).pk
    assert call["admin_url"] == reverse("admin:calls_callsession_change", args=[pk])


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
    new_call("CA-stale", status=CallState.STREAMING, started_at=old, ended=False).save()
    new_call("CA-live", status=CallState.STREAMING, ended=False).save()

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


def test_rule_selects_calls_and_shows_only_their_suspects() -> None:
    goodbye_call()  # missed_barge_in and drain_before_final_mark
    new_call("CA-slow").barge_in(2000, remaining_ms=3000, reaction_ms=80.0).save()
    new_call("CA-fine").save()

    slow = run("--rule", "slow_reaction")
    two = run("--rule", "slow_reaction", "--rule", "missed_barge_in")
    as_json = run_json("--rule", "missed_barge_in")

    assert "CA-slow  " in slow
    assert GOODBYE_SID not in slow
    assert "CA-fine" not in slow
    assert "! slow_reaction  barge-in reaction 80.0 ms (> 50 ms)" in slow
    assert slow.rstrip().endswith("Summary: 3 call(s) examined, 1 with suspects (slow_reaction 1).")
    assert "CA-slow  " in two
    goodbye = "\n".join(block(two, GOODBYE_SID))
    assert "! missed_barge_in" in goodbye
    assert "drain_before_final_mark" not in goodbye
    assert "12.100 s  drain  " in goodbye  # the facts stay, only the suspects narrow
    assert [c["call_sid"] for c in as_json["calls"]] == [GOODBYE_SID]
    assert rules(as_json, GOODBYE_SID) == ["missed_barge_in"]
    assert as_json["suspect_calls_by_rule"]["missed_barge_in"] == 1
    assert as_json["suspect_calls_by_rule"]["drain_before_final_mark"] == 0


def test_an_unknown_rule_is_refused_with_the_choices() -> None:
    with pytest.raises(CommandError, match=r"invalid choice: 'slow' \(choose from .*slow_link"):
        run("--rule", "slow")


def test_summary_counts_examined_and_suspect_calls_by_rule() -> None:
    goodbye_call()
    new_call("CA-slow").barge_in(2000, remaining_ms=3000, reaction_ms=80.0).save()
    new_call("CA-fine").save()

    out = run()
    report = run_json()

    assert out.splitlines()[-1] == (
        "Summary: 3 call(s) examined, 2 with suspects "
        "(missed_barge_in 1, drain_before_final_mark 1, slow_reaction 1)."
    )
    assert (report["calls_examined"], report["suspect_calls"]) == (3, 2)
    assert report["suspect_calls_by_rule"] == {
        "missed_barge_in": 1,
        "drain_before_final_mark": 1,
        "slow_reaction": 1,
        "missing_ended_at": 0,
        "slow_link": 0,
        "long_resume_gap": 0,
        "late_interruption": 0,
    }
    assert run("--suspects-only").splitlines()[-1] == out.splitlines()[-1]
    assert "CA-fine" not in run("--suspects-only")


def test_admin_url_is_a_path_or_absolute_with_a_base_url(settings: Any) -> None:
    call = goodbye_call()
    path = reverse("admin:calls_callsession_change", args=[call.pk])

    plain = run()
    absolute = run("--base-url", "https://calls.example.com/")
    configure(settings, REVIEW_BASE_URL="https://review.example.com")
    from_setting = run()
    overridden = run_json("--base-url", "http://localhost:8000")

    assert block(plain, GOODBYE_SID)[2] == f"  admin {path}"
    assert block(absolute, GOODBYE_SID)[2] == f"  admin https://calls.example.com{path}"
    assert block(from_setting, GOODBYE_SID)[2] == f"  admin https://review.example.com{path}"
    assert overridden["calls"][0]["admin_url"] == f"http://localhost:8000{path}"


def test_call_takes_a_sid_prefix_and_several_calls() -> None:
    goodbye_call()
    new_call("CA-exact").save()
    new_call("CA-exact-2").save()

    def sids(*args: str) -> list[str]:
        return [c["call_sid"] for c in run_json(*args)["calls"]]

    assert sids("--call", GOODBYE_SID[:6]) == [GOODBYE_SID]
    assert sids("--call", "CA-exact") == ["CA-exact"]  # a whole SID names its own call
    assert sids("--call", "CA-exact-", "--call", "CAaaaaaaa") == ["CA-exact-2", GOODBYE_SID]
    assert sids("--call", "CA-exact", "--call", "CA-exact") == ["CA-exact"]
    assert GOODBYE_SID in run("--call", "CAaaaaa")


def test_a_short_or_ambiguous_prefix_is_a_clear_error() -> None:
    for n in range(12):
        new_call(f"CA-many-{n:02d}").save()
    for n in range(3):
        new_call(f"CA-few-{n}").save()

    with pytest.raises(CommandError, match=r"'CA-ma' is too short: .* at least 6 characters"):
        run("--call", "CA-ma")
    with pytest.raises(CommandError) as few:
        run("--call", "CA-few")
    with pytest.raises(CommandError) as many:
        run("--call", "CA-many")

    assert str(few.value) == (
        "--call: SID prefix 'CA-few' is ambiguous: it matches 3 calls: CA-few-0, CA-few-1, CA-few-2"
    )
    assert "matches more than 10 calls, the first 10: CA-many-00, CA-many-01," in str(many.value)
    assert str(many.value).endswith("CA-many-09")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--call", "CA-missing"], "no call with SID or SID prefix 'CA-missing'"),
        (["--since", "yesterday"], "--since: cannot read 'yesterday'"),
        (["--since", "2025-13-45"], "--since: cannot read '2025-13-45'"),
        (["--last", "0"], "'0' must be 1 or more"),
        (["--last", "many"], "'many' is not a whole number"),
        (["--suspect-window-ms", "-5"], "'-5' must be 0 or more"),
        (["--slow-reaction-ms", "fast"], "'fast' is not a number"),
        (["--long-resume-gap-ms", "-1"], "'-1' must be 0 or more"),
        (["--late-interruption-ms", "soon"], "'soon' is not a whole number"),
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


class QueryCountingOutput(StringIO):
    """Output that notes how many queries had run when each call's block was written."""

    def __init__(self, queries: CaptureQueriesContext) -> None:
        super().__init__()
        self.queries = queries
        self.seen: list[tuple[str, int]] = []

    def write(self, text: str) -> int:
        if text.startswith("CA"):
            self.seen.append((text.split()[0], len(self.queries)))
        return super().write(text)


def test_large_selections_are_read_and_printed_a_chunk_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(diagnostics, "CHUNK_SIZE", 2)
    started = timezone.now() - timedelta(minutes=1)
    for n in range(5):  # one start time for all: the pages must still split cleanly
        new_call(f"CA-same-{n}", started_at=started).drain(
            1000, actual_ms=900, echoed=False, cut_off_ms=600
        ).save()

    with CaptureQueriesContext(connection) as queries:
        out = QueryCountingOutput(queries)
        call_command("drain_diagnostics", "--since", "1d", stdout=out)

    # Three queries a chunk (calls, barge-ins, playout log); each chunk printed as it is read.
    assert out.seen == [
        ("CA-same-4", 3),
        ("CA-same-3", 3),
        ("CA-same-2", 6),
        ("CA-same-1", 6),
        ("CA-same-0", 9),
    ]
    assert len(queries) == 9
    assert all(" LIMIT 2" in q["sql"] for q in queries.captured_queries[::3])
    assert out.getvalue().rstrip().endswith("Summary: 5 call(s) examined, 5 with suspects "
                                           "(drain_before_final_mark 5).")  # fmt: skip
    assert [c["call_sid"] for c in run_json("--last", "3")["calls"]] == [
        "CA-same-4",
        "CA-same-3",
        "CA-same-2",
    ]


def test_rule_filtering_streams_with_the_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnostics, "CHUNK_SIZE", 2)
    now = timezone.now()
    for n in range(6):
        builder = new_call(f"CA-mix-{n}", started_at=now - timedelta(minutes=n))
        if n % 3 == 0:
            builder.barge_in(2000, remaining_ms=3000, reaction_ms=80.0)
        builder.save()

    report = run_json("--since", "1d", "--rule", "slow_reaction")

    assert [c["call_sid"] for c in report["calls"]] == ["CA-mix-0", "CA-mix-3"]
    assert (report["calls_examined"], report["suspect_calls"]) == (6, 2)


def test_many_calls_by_sid_still_send_bounded_id_lists(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    monkeypatch.setattr(diagnostics, "ID_LIST_LIMIT", 2)
    _populate(3)

    # One query per SID, then barge-ins and playout log for each two calls.
    with django_assert_num_queries(3 + 2 * 2):
        report = run_json(*(f"--call=CA-bulk-{n:04d}" for n in range(3)))

    assert len(report["calls"]) == 3
    assert all(len(c["barge_ins"]) == 1 for c in report["calls"])
