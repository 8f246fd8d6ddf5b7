"""Timeline geometry: playout-log rows in, positioned shapes out (no database, no template)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import pytest

from calls.review.timeline import (
    MIN_WIDTH,
    PX_PER_S,
    Shape,
    Timeline,
    TimelineRow,
    build_timeline,
)


def playout(response_id: str, start_ms: int, end_ms: int, item_id: str = "") -> list[TimelineRow]:
    item = item_id or f"item_{response_id}"
    return [
        ("response_started", start_ms - 30, "", {"response_id": response_id}),
        ("playout_started", start_ms, "", {"response_id": response_id, "item_id": item}),
        (
            "playout_ended",
            end_ms + 120,  # logged after the audio ended, as the bridge does
            "",
            {
                "response_id": response_id,
                "audio_end_offset_ms": end_ms,
                "audio_ms": end_ms - start_ms,
                "interrupted": False,
            },
        ),
    ]


def barge_in(offset_ms: int, response_id: str, **figures: Any) -> TimelineRow:
    details = {
        "response_id": response_id,
        "item_id": f"item_{response_id}",
        "playout_remaining_ms": 1800,
        "pending_ms": 1500,
        "unplayed_ms": 300,
        "reaction_ms": 0.4,
        "audio_end_ms": 2000,
        "response_cancelled": True,
        "speech_onset_offset_ms": offset_ms - 250,
        "heard_text": "Your order ships on",
        "cut_text": "Monday by courier.",
        **figures,
    }
    return ("barge_in", offset_ms, "playout_active_1800ms", details)


def ordered(rows: list[TimelineRow]) -> list[TimelineRow]:
    return sorted(rows, key=lambda row: row[1])


def only(timeline: Timeline, kind: str) -> Shape:
    (shape,) = timeline.of_kind(kind)
    return shape


def lane_y(timeline: Timeline, key: str) -> float:
    return next(lane.y for lane in timeline.lanes if lane.key == key)


INTERRUPTED = ordered(
    [
        ("stream_started", 0, "", {}),
        *playout("resp_zz", 1000, 3000),
        barge_in(3000, "resp_zz"),
        ("truncated", 3003, "", {"item_id": "item_resp_zz", "audio_end_ms": 2000}),
        ("response_done", 3004, "", {"response_id": "resp_zz", "status": "cancelled"}),
        ("speech_stopped", 4000, "", {"audio_end_ms": 3900}),
        *playout("resp_aa", 4500, 6000),
        ("stream_ended", 9000, "", {"end_reason": "caller_hangup"}),
    ]
)


def test_caller_speech_starts_at_its_onset_with_the_decision_marked_on_it() -> None:
    timeline = build_timeline(INTERRUPTED)

    speech, decision = only(timeline, "speech"), only(timeline, "decision")

    assert (speech.offset_ms, speech.end_ms) == (2750, 4000)
    assert dict(speech.data) == {"onset-ms": "2750", "decided-ms": "3000", "decision": "barge_in"}
    assert speech.variant == "barge"
    assert decision.offset_ms == 3000
    assert decision.line is not None
    assert decision.line.x == timeline.x_of(3000)
    assert speech.body is not None
    assert speech.body.x == timeline.x_of(2750)
    assert decision.label is not None
    assert decision.label.text == "barge-in 1800 ms left"
    assert "playout_remaining_ms=1800, audio_end_ms=2000, reaction_ms=0.4" in decision.title


def test_speech_without_a_known_onset_starts_at_the_decision() -> None:
    rows: list[TimelineRow] = [
        ("user_speech_ai_silent", 5000, "playout_ended_900ms_ago", {"ms_since_playout_end": 900}),
        ("speech_stopped", 6000, "", {}),
    ]

    speech = only(build_timeline(rows), "speech")

    assert (speech.offset_ms, speech.end_ms, speech.variant) == (5000, 6000, "silent")
    assert "onset unknown" in speech.title


def test_a_missed_barge_in_visibly_overlaps_the_ai_audio() -> None:
    rows = ordered(
        [
            *playout("resp_1", 1000, 4000),
            (
                "user_speech_ai_silent",
                4100,
                "playout_ended_100ms_ago",
                {
                    "ms_since_playout_end": 100,
                    "onset_ms_after_playout_end": -300,
                    "speech_onset_offset_ms": 3700,
                },
            ),
            ("speech_stopped", 5000, "", {}),
        ]
    )
    timeline = build_timeline(rows)

    speech, heard = only(timeline, "speech"), only(timeline, "playout")

    assert speech.variant == "missed"
    assert speech.offset_ms == 3700 < heard.end_ms == 4000
    assert speech.overlay is not None
    assert heard.body is not None
    assert speech.overlay.x == timeline.x_of(3700)
    assert speech.overlay.x + speech.overlay.width == pytest.approx(timeline.x_of(4000), abs=0.2)
    assert speech.overlay.y <= heard.body.y + heard.body.height  # reaches into the AI lane
    assert "AI silent: playout_ended_100ms_ago" in only(timeline, "decision").title


def test_speech_judged_silent_after_the_audio_ended_is_not_missed() -> None:
    rows = ordered(
        [
            *playout("resp_1", 1000, 4000),
            (
                "user_speech_ai_silent",
                4700,
                "playout_ended_700ms_ago",
                {"onset_ms_after_playout_end": 400, "speech_onset_offset_ms": 4400},
            ),
        ]
    )

    speech = only(build_timeline(rows), "speech")

    assert (speech.variant, speech.overlay) == ("silent", None)


def test_the_dropped_tail_is_a_ghost_after_the_clear_as_long_as_what_both_sides_held() -> None:
    ghost = only(build_timeline(INTERRUPTED), "ghost")

    assert (ghost.offset_ms, ghost.end_ms) == (3000, 3000 + 300 + 1500)
    assert dict(ghost.data) == {"dropped-ms": "1800", "response": "R1"}
    assert ghost.label is not None
    assert ghost.label.text == "1.8 s dropped"
    assert "Monday by courier." in ghost.title


def test_a_ghost_stops_at_the_end_of_the_call_but_keeps_its_length() -> None:
    rows = ordered(
        [
            *playout("resp_1", 0, 1000),
            barge_in(1000, "resp_1", pending_ms=4000, unplayed_ms=250),
            ("stream_ended", 2000, "", {"end_reason": "caller_hangup"}),
        ]
    )

    ghost = only(build_timeline(rows), "ghost")

    assert (ghost.end_ms, dict(ghost.data)["dropped-ms"]) == (2000, "4250")
    assert ghost.label is not None
    assert ghost.label.text == "4.2 s dropped"


def test_clear_and_truncation_are_separate_marks_the_truncation_at_the_heard_position() -> None:
    rows = [*INTERRUPTED]
    # The model held less than was played: its memory is cut at 1500 ms, not 2000.
    rows[rows.index(("truncated", 3003, "", {"item_id": "item_resp_zz", "audio_end_ms": 2000}))] = (
        "truncated",
        3003,
        "",
        {"item_id": "item_resp_zz", "audio_end_ms": 1500},
    )
    timeline = build_timeline(rows)

    clear, truncation = only(timeline, "clear"), only(timeline, "truncation")

    assert clear.offset_ms == 3000
    assert truncation.offset_ms == 1000 + 1500  # where R1 was heard from, plus its heard ms
    assert truncation.variant == "confirmed"
    assert clear.line is not None
    assert truncation.line is not None
    assert clear.line.x != truncation.line.x
    assert truncation.label is not None
    assert truncation.label.text == "memory cut 500 ms before the clear"


def test_a_truncate_never_confirmed_or_refused_shows_what_was_asked_or_the_deletion() -> None:
    asked = [row for row in INTERRUPTED if row[0] != "truncated"]
    refused = ordered(
        [
            *asked,
            (
                "truncate_rejected",
                3003,
                "",
                {"item_id": "item_resp_zz", "action": "deleted", "code": "invalid_value"},
            ),
        ]
    )

    requested = only(build_timeline(asked), "truncation")
    deleted = only(build_timeline(refused), "truncation")

    assert (requested.variant, requested.offset_ms) == ("requested", 3000)
    assert requested.label is None  # where the clear is: the mark says it all
    assert (deleted.variant, deleted.offset_ms) == ("deleted", 1000)


def test_an_answer_of_two_audio_items_shows_where_the_second_began_and_where_it_was_cut() -> None:
    """Newer models put several audio items in one answer: a barge-in 500 ms into the
    second cuts it there, 1000 + 500 ms into the answer, not 500 ms into it."""
    rows = ordered(
        [
            ("stream_started", 0, "", {}),
            ("response_started", 970, "", {"response_id": "resp_2i"}),
            ("playout_started", 1000, "", {"response_id": "resp_2i", "item_id": "item_a"}),
            barge_in(2500, "resp_2i", item_id="item_b", audio_end_ms=500),
            (
                "playout_ended",
                2500,
                "",
                {
                    "response_id": "resp_2i",
                    "audio_end_offset_ms": 2500,
                    "audio_ms": 1800,
                    "interrupted": True,
                    "items": [["item_a", 1000], ["item_b", 800]],
                },
            ),
            ("truncated", 2503, "", {"item_id": "item_b", "audio_end_ms": 500}),
            ("stream_ended", 4000, "", {"end_reason": "caller_hangup"}),
        ]
    )
    timeline = build_timeline(rows)

    item = only(timeline, "item_start")
    assert item.offset_ms == 1000 + 1000
    assert "item_b" in item.title
    truncation = only(timeline, "truncation")
    assert truncation.offset_ms == 1000 + 1000 + 500
    assert truncation.label is None  # right at the clear


def test_an_answer_heard_in_two_stretches_places_its_items_within_each() -> None:
    """The model's audio ran dry after 1 s of item a: a's last 300 ms and item b played
    in a second stretch. b begins 300 ms into it (the answer's item 2, and a does not
    begin again), and a cut 700 ms into b is placed there."""

    def ended(offset: int, audio_ms: int, items: list[list[Any]], cut: bool) -> TimelineRow:
        details = {
            "response_id": "resp_2s",
            "audio_end_offset_ms": offset,
            "audio_ms": audio_ms,
            "interrupted": cut,
            "items": items,
        }
        return ("playout_ended", offset, "", details)

    rows = ordered(
        [
            ("stream_started", 0, "", {}),
            ("response_started", 970, "", {"response_id": "resp_2s"}),
            ("playout_started", 1000, "", {"response_id": "resp_2s", "item_id": "item_a"}),
            ended(2000, 1000, [["item_a", 1000]], cut=False),
            ("playout_started", 3000, "", {"response_id": "resp_2s", "item_id": "item_a"}),
            barge_in(4000, "resp_2s", item_id="item_b", audio_end_ms=700),
            ended(4000, 1000, [["item_a", 300], ["item_b", 700]], cut=True),
            ("truncated", 4003, "", {"item_id": "item_b", "audio_end_ms": 700}),
            ("stream_ended", 5000, "", {"end_reason": "caller_hangup"}),
        ]
    )
    timeline = build_timeline(rows)

    item = only(timeline, "item_start")
    assert item.offset_ms == 3000 + 300
    assert "item 2 begins, 1.300 s into the answer" in item.title
    assert only(timeline, "truncation").offset_ms == 3000 + 300 + 700


def test_generation_ends_are_marked_on_the_ai_lane() -> None:
    timeline = build_timeline(INTERRUPTED)

    (end,) = timeline.of_kind("generation_end")

    assert (end.offset_ms, end.variant) == (3004, "stopped")
    assert end.line is not None
    assert lane_y(timeline, "ai") <= end.line.y1 < lane_y(timeline, "caller")


def drain(*ending: TimelineRow) -> list[TimelineRow]:
    return [
        *playout("resp_1", 1000, 3000),
        ("end_call_requested", 1500, "", {"call_id": "fc_1"}),
        ("drain_started", 1600, "", {"expected_wait_ms": 1400}),
        *ending,
        ("stream_ended", 5000, "", {"end_reason": "agent_hangup"}),
    ]


@pytest.mark.parametrize(
    ("ending", "outcome"),
    [
        (
            ("drain_completed", 3050, "", {"final_mark_echoed": True, "cut_off_ms": 0}),
            "completed",
        ),
        (
            ("drain_completed", 2600, "", {"final_mark_echoed": False, "cut_off_ms": 400}),
            "cut",
        ),
        (("hangup_cancelled", 2200, "", {"reason": "barge_in"}), "cancelled"),
    ],
)
def test_drains_say_how_they_ended(ending: TimelineRow, outcome: str) -> None:
    shape = only(build_timeline(ordered(drain(ending))), "drain")

    assert (shape.offset_ms, shape.end_ms) == (1600, ending[1])
    assert (shape.variant, dict(shape.data)) == (outcome, {"outcome": outcome})


def test_a_drain_that_never_ended_is_cut_and_runs_to_the_end() -> None:
    shape = only(build_timeline(ordered(drain())), "drain")

    assert (shape.end_ms, shape.variant) == (5000, "cut")


def test_a_goodbye_cancelled_before_its_drain_began_is_still_an_interrupted_goodbye() -> None:
    rows: list[TimelineRow] = [
        ("end_call_requested", 1500, "", {"call_id": "fc_1"}),
        ("hangup_cancelled", 1800, "", {"reason": "barge_in"}),
    ]

    shape = only(build_timeline(rows), "drain")

    assert (shape.offset_ms, shape.end_ms, shape.variant) == (1500, 1800, "cancelled")
    assert "before its drain began" in shape.title


def test_errors_have_a_lane_of_their_own() -> None:
    rows: list[TimelineRow] = [
        ("model_error", 100, "", {"code": "invalid_value", "message": "Audio content of 1500ms"}),
        ("model_error", 200, "", {"code": "response_cancel_not_active", "message": "none"}),
        ("model_fault", 300, "", {"what": "unresponsive", "attempt": 1}),
        ("model_recovered", 400, "", {"attempt": 1, "turns": 3}),
        ("protocol_error", 500, "", {"reason": "not JSON"}),
        ("truncate_rejected", 600, "", {"item_id": "it", "action": "retried", "code": "x"}),
    ]
    timeline = build_timeline(rows)

    errors = timeline.of_kind("error")

    assert [(e.offset_ms, e.variant) for e in errors] == [
        (100, "error"),
        (200, "notice"),
        (300, "fault"),
        (400, "recovered"),
        (500, "protocol"),
        (600, "truncate"),
    ]
    assert [dict(e.data)["record"] for e in errors] == [row[0] for row in rows]
    errors_y = lane_y(timeline, "errors")
    assert all(e.line is not None and e.line.y1 >= errors_y for e in errors)
    assert errors_y > lane_y(timeline, "hangup") > lane_y(timeline, "caller")


def test_responses_are_numbered_in_order_of_appearance_with_their_words() -> None:
    rows = ordered(
        [
            *playout("resp_zz", 1000, 2000),
            *playout("resp_aa", 3000, 4000),
            (
                "conversation_turn",
                1100,
                "",
                {"role": "assistant", "item_id": "item_resp_zz", "text": "Hello there."},
            ),
        ]
    )

    first, second = build_timeline(rows).of_kind("playout")

    assert [dict(first.data), dict(second.data)] == [{"response": "R1"}, {"response": "R2"}]
    assert "resp_zz" in first.title
    assert "“Hello there.”" in first.title
    assert first.label is not None
    assert first.label.text.startswith("R1")
    assert first.variant != second.variant  # neighbours in two shades


def test_back_to_back_responses_are_heard_one_after_the_other() -> None:
    rows: list[TimelineRow] = [
        ("playout_started", 0, "", {"response_id": "r1"}),
        ("playout_started", 900, "", {"response_id": "r2"}),  # queued behind r1
        (
            "playout_ended",
            2400,
            "",
            {"response_id": "r1", "audio_end_offset_ms": 2400, "audio_ms": 1200},
        ),
        (
            "playout_ended",
            2400,
            "",
            {"response_id": "r2", "audio_end_offset_ms": 2400, "audio_ms": 1400},
        ),
    ]

    first, second = build_timeline(rows).of_kind("playout")

    assert (first.offset_ms, first.end_ms) == (0, 1200)
    assert (second.offset_ms, second.end_ms) == (1200, 2400)


def boxes(timeline: Timeline) -> list[tuple[float, float, float, float]]:
    return [
        (s.label.left, s.label.top, s.label.right, s.label.bottom)
        for s in timeline.shapes
        if s.label is not None
    ]


def test_labels_never_overprint_on_a_busy_call() -> None:
    rows: list[TimelineRow] = []
    for n in range(30):
        start = n * 1000
        rows += [
            ("playout_started", start, "", {"response_id": f"r{n}", "item_id": f"item_r{n}"}),
            (
                "playout_ended",
                start + 600,
                "",
                {"response_id": f"r{n}", "audio_end_offset_ms": start + 600},
            ),
            barge_in(start + 600, f"r{n}"),
            ("truncated", start + 603, "", {"item_id": f"item_r{n}", "audio_end_ms": 200}),
            ("model_error", start + 604, "", {"code": "response_cancel_not_active"}),
            ("speech_stopped", start + 900, "", {}),
        ]
    timeline = build_timeline(
        rows, suspects=[(n * 1000 + 600, "slow_reaction", "slow") for n in range(30)]
    )

    labelled = boxes(timeline)

    assert len(labelled) > 30 * 4
    for (l1, t1, r1, b1), (l2, t2, r2, b2) in combinations(labelled, 2):
        assert r1 <= l2 or r2 <= l1 or b1 <= t2 or b2 <= t1
    assert all(left >= 0 and right <= timeline.width for left, _, right, _ in labelled)
    assert max(lane.label_rows for lane in timeline.lanes) > 1  # the picture grew instead
    assert timeline.height > build_timeline(rows[:6]).height


def test_a_label_near_the_end_turns_back_into_the_picture() -> None:
    rows: list[TimelineRow] = [("stream_ended", 60_000, "", {"end_reason": "a-rather-long-reason"})]
    timeline = build_timeline(rows)

    label = only(timeline, "stream_ended").label

    assert label is not None
    assert label.anchor == "end"
    assert label.right <= timeline.width


def test_width_follows_the_length_of_the_call() -> None:
    short = build_timeline([("stream_ended", 3000, "", {})])
    minute = build_timeline([("stream_ended", 60_000, "", {})])
    ten_minutes = build_timeline([("stream_ended", 600_000, "", {})])

    assert short.width == MIN_WIDTH
    assert minute.width < ten_minutes.width
    assert ten_minutes.px_per_s == PX_PER_S
    assert ten_minutes.plot_width == 600 * PX_PER_S
    assert ten_minutes.ticks[1].x - ten_minutes.ticks[0].x >= 50  # tick labels never crowd


def test_suspects_are_flagged_at_their_offset_and_listed() -> None:
    suspects = [
        (4100, "missed_barge_in", "speech began 300 ms before playout ended"),
        (None, "slow_link", "link to Twilio slow"),
    ]
    timeline = build_timeline(INTERRUPTED, suspects=suspects)

    flag = only(timeline, "suspect")
    first, second = timeline.suspects

    assert flag.offset_ms == 4100
    assert flag.line is not None
    assert flag.line.x == timeline.x_of(4100)
    assert "speech began 300 ms before playout ended" in flag.title
    assert (first.element_id, first.at, first.name) == (
        flag.element_id,
        "4.100 s",
        "missed barge-in",
    )
    assert (second.element_id, second.at) == ("", "whole call")
    assert timeline.lanes[0].key == "findings"
    assert "findings" not in [lane.key for lane in build_timeline(INTERRUPTED).lanes]


def test_the_header_gives_the_link_round_trip() -> None:
    assert "link round trip to Twilio: 84 ms" in build_timeline(INTERRUPTED, link_rtt_ms=84).header
    assert "not measured" in build_timeline(INTERRUPTED).header
    assert "2 responses · 1 barge-in" in build_timeline(INTERRUPTED).header


def test_tooltips_give_times_to_the_millisecond() -> None:
    speech = only(build_timeline(INTERRUPTED), "speech")

    assert "caller speech 2.750 s to 4.000 s" in speech.title


def test_an_empty_call_still_draws_an_axis() -> None:
    timeline = build_timeline([])

    assert timeline.shapes == []
    assert timeline.width == MIN_WIDTH
    assert [t.label for t in timeline.ticks][:3] == ["0 s", "0.1 s", "0.2 s"]
