"""The pure report: a call's text lines, the JSON document and the summary, from plain data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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
    wrap,
)

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
