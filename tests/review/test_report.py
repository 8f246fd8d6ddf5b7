"""The pure report: a call's text lines, the JSON document and the summary, from plain data."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calls.review.diagnostics import ReviewedCall
from calls.review.findings import BargeIn, CallDiagnostics, Suspect, Thresholds
from calls.review.report import (
    WIDTH,
    JsonReport,
    TextReport,
    Totals,
    call_lines,
    heard_cut,
    summary_lines,
    verdict_counts,
    wrap,
)
from calls.review.sounds import AnswerPause, PauseOutcome, TurnVerdict

STARTED = datetime(2025, 1, 15, 12, 0, 0, 250000, tzinfo=UTC)


def reviewed() -> ReviewedCall:
    diagnostics = CallDiagnostics(
        call_sid="CA-report",
        status="completed",
        started_at=STARTED,
        ended_at=STARTED + timedelta(seconds=20),
        end_reason="caller_goodbye",
        responses=2,
        ai_audio_ms=5000,
        barge_ins=[
            BargeIn(
                offset_ms=4200,
                response_id="resp_1",
                playout_remaining_ms=900,
                audio_end_ms=3000,
                reaction_ms=0.4,
                pending_ms=0,
                unplayed_ms=900,
                response_cancelled=True,
                heard_text="Your order ships on",
                cut_text="Monday.",
            )
        ],
        suspects=[
            Suspect("slow_reaction", 4200, "barge-in reaction 0.4 ms"),
            Suspect("missing_ended_at", None, "call-wide"),
        ],
    )
    return ReviewedCall(pk=7, diagnostics=diagnostics, barge_in_onsets_ms=(-300,))


def test_call_lines_show_the_start_in_the_given_time_zone_and_call_wide_suspects_first() -> None:
    header, link, admin, *events = call_lines(reviewed(), "/admin/x/", ZoneInfo("Europe/Paris"))

    assert header == (
        "CA-report  completed (caller_goodbye)  started 2025-01-15 13:00:00 CET  20.0 s  "
        "2 responses"
    )
    assert (link, admin) == ("  link not measured", "  admin /admin/x/")
    assert events == [
        "       -    ! missing_ended_at  call-wide",
        "   4.200 s  barge-in   onset 300 ms before playout end  reaction 0.4 ms  900 ms left  "
        "audio_end 3000 ms  cancelled",
        '                       heard "Your order ships on"  cut "Monday."',
        "   4.200 s  ! slow_reaction  barge-in reaction 0.4 ms",
    ]


def test_an_admin_link_too_long_for_its_label_stands_alone_unshortened() -> None:
    url = "https://calls.example.com/" + "p" * WIDTH

    assert url in call_lines(reviewed(), url, UTC)


def test_wrap_breaks_between_parts_and_aligns_under_the_indent() -> None:
    parts = ["a" * 50, "b" * 50, "c" * 50]

    assert wrap("head  ", parts, "    ") == [
        "head  " + "a" * 50 + "  " + "b" * 50,
        "    " + "c" * 50,
    ]


def test_wrap_breaks_a_part_longer_than_a_line_between_words() -> None:
    words = " ".join(f"word{n}" for n in range(60))

    lines = wrap("head  ", [words], "  ")

    assert len(lines) > 1
    assert all(len(line) <= WIDTH for line in lines)
    assert lines[0].startswith("head  word0 ")
    assert all(line.startswith("  word") for line in lines[1:])
    assert " ".join(lines).split() == ["head", *words.split()]


def test_heard_cut_keeps_the_words_either_side_of_the_cut_point() -> None:
    heard = " ".join(f"heard{n}" for n in range(100))
    cut = " ".join(f"cut{n}" for n in range(100))

    line = heard_cut(heard, cut, " " * 23)

    assert len(line) <= WIDTH
    _, kept_heard, _, kept_cut, _ = line.split('"')
    assert kept_heard.startswith("…")
    assert kept_heard.endswith(" heard98 heard99")
    assert kept_cut.startswith("cut0 cut1 ")
    assert kept_cut.endswith("…")
    # Whole words only on either side of the ellipses.
    assert set(kept_heard[1:].split()) <= set(heard.split())
    assert set(kept_cut[:-1].split()) <= set(cut.split())


def test_heard_cut_leaves_short_texts_whole_with_their_whitespace_collapsed() -> None:
    assert heard_cut("two\n  words", "", "  ") == '  heard "two words"  cut ""'


def test_json_pieces_make_one_document_with_every_rule_counted() -> None:
    report = JsonReport(Thresholds())
    pieces = [report.opening(), report.call(reviewed(), "/a/"), report.call(reviewed(), "/b/")]
    pieces.append(report.closing(Totals(3, 2, {"slow_reaction": 2})))

    document = json.loads("".join(pieces))

    assert document["thresholds"]["stale_streaming_s"] == 3600
    assert [c["admin_url"] for c in document["calls"]] == ["/a/", "/b/"]
    assert document["calls"][0]["barge_ins"][0]["onset_ms_after_playout_end"] == -300
    assert document["calls"][0]["duration_s"] == 20.0
    assert document["suspect_calls_by_rule"]["slow_reaction"] == 2
    assert document["suspect_calls_by_rule"]["slow_link"] == 0
    assert (document["calls_examined"], document["suspect_calls"]) == (3, 2)


def test_an_empty_json_document_is_still_one_document() -> None:
    report = JsonReport(Thresholds())

    document = json.loads(report.opening() + report.closing(Totals()))

    assert document["calls"] == []
    assert document["calls_examined"] == 0


def test_the_summary_lists_rules_in_the_findings_order_and_says_when_nothing_was_selected() -> None:
    assert summary_lines(Totals()) == ["No calls selected."]
    assert summary_lines(Totals(5, 2, {"slow_link": 1, "missed_barge_in": 2})) == [
        "Summary: 5 call(s) examined, 2 with suspects (missed_barge_in 2, slow_link 1)."
    ]


def test_the_text_report_separates_calls_by_a_blank_line_and_ends_with_the_summary() -> None:
    report = TextReport(UTC)

    text = report.opening() + report.call(reviewed(), "/a/") + report.closing(Totals(1, 1))

    block, summary = text.split("\n\n")
    assert block.startswith("CA-report  ")
    assert summary == "Summary: 1 call(s) examined, 1 with suspects.\n"


SOUND = TurnVerdict(
    offset_ms=0,
    verdict="interruption",
    decided_by="length",
    decision_ms=800,
    speech_onset_offset_ms=0,
    voice_ms=800,
    words="",
    paused=False,
    interruptible=True,
)


def sounds_reviewed() -> ReviewedCall:
    def judged(offset_ms: int, verdict: str, **fields: Any) -> TurnVerdict:
        return replace(SOUND, offset_ms=offset_ms, verdict=verdict, **fields)

    diagnostics = CallDiagnostics(
        call_sid="CA-sounds",
        status="completed",
        started_at=STARTED,
        ended_at=STARTED + timedelta(seconds=20),
        end_reason="caller_hangup",
        responses=2,
        ai_audio_ms=5000,
        turn_verdicts=[
            judged(3000, "interruption", interruptible=False, words="x" * 200),
            judged(4000, "interruption", stopped_hearing_ms=None),
            judged(5000, "laughter", decided_by="new_rule"),
        ],
        pauses=[
            AnswerPause(None, PauseOutcome.RESUMED, 6000, 250),
            AnswerPause(7000, PauseOutcome.OPEN, None, None, "item_9", 120, 40),
        ],
    )
    return ReviewedCall(pk=8, diagnostics=diagnostics)


def test_caller_sounds_lines_say_what_the_rows_did_not() -> None:
    _, _, sounds, _, *events = call_lines(sounds_reviewed(), "/admin/y/", UTC)

    assert sounds == (
        "  caller sounds 3 (backchannel 0, noise 0, echo 0, interruption 2, laughter 1)  "
        "answer paused 1, resumed 1"
    )
    assert events == [
        "   3.000 s  verdict    interruption  by length  decided 800 ms  "
        "not interruptible: the passage went on  voice 800 ms",
        '                       words "' + "x" * 59 + '…"',
        "   4.000 s  verdict    interruption  by length  decided 800 ms  stopped hearing - ms  "
        "voice 800 ms",
        "   5.000 s  verdict    laughter  by new_rule  decided 800 ms  voice 800 ms",
        "   6.000 s  resumed    gap 250 ms  its pause not logged",
        "   7.000 s  paused     item item_9  heard 120 ms  requeued 40 ms  never resumed",
    ]


def test_a_held_pause_says_when_the_answer_ran_out_before_or_after_it() -> None:
    held = {"item_id": "item_1", "heard_ms": 900, "requeued_ms": 0, "cleared": False}
    diagnostics = replace(
        sounds_reviewed().diagnostics,
        turn_verdicts=[],
        pauses=[
            AnswerPause(7000, PauseOutcome.RESUMED, 7200, 190, **held, stop_in_ms=20),
            AnswerPause(9000, PauseOutcome.RESUMED, 9200, 210, **held, stop_in_ms=-10),
        ],
    )
    *_, first, _, second, _ = call_lines(ReviewedCall(pk=8, diagnostics=diagnostics), "/", UTC)

    assert first.endswith("item item_1  heard 900 ms  held, ran out in 20 ms")
    assert second.endswith("item item_1  heard 900 ms  held, had run out 10 ms before")


def test_verdicts_are_counted_every_known_one_first() -> None:
    counts = verdict_counts(sounds_reviewed().diagnostics.turn_verdicts)

    assert list(counts.items()) == [
        ("backchannel", 0),
        ("noise", 0),
        ("echo", 0),
        ("interruption", 2),
        ("laughter", 1),
    ]
    assert verdict_counts([]) == {"backchannel": 0, "noise": 0, "echo": 0, "interruption": 0}


def test_json_counts_the_verdicts_and_gives_the_new_thresholds() -> None:
    report = JsonReport(Thresholds(long_resume_gap_ms=250))

    document = json.loads(
        report.opening() + report.call(sounds_reviewed(), "/s/") + report.closing(Totals(1))
    )

    assert document["thresholds"]["long_resume_gap_ms"] == 250
    assert document["thresholds"]["late_interruption_ms"] == 450
    assert document["calls"][0]["turn_verdict_counts"]["interruption"] == 2
    assert document["calls"][0]["pauses"][1]["outcome"] == "open"
    assert document["suspect_calls_by_rule"]["late_interruption"] == 0
