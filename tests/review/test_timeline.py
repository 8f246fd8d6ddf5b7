"""Timeline geometry: rows in, shapes with x/width in px out."""

from __future__ import annotations

import pytest

from calls.review.timeline import PLOT_WIDTH, PLOT_X, WIDTH, TimelineRow, build_timeline, x_of

CALL: list[TimelineRow] = [
    ("stream_started", 0, "", {}),
    ("playout_started", 1000, "", {"response_id": "resp_1"}),
    (
        "barge_in",
        4000,
        "playout_active_2000ms",
        {"playout_remaining_ms": 2000, "audio_end_ms": 3000, "reaction_ms": 0.5},
    ),
    ("playout_ended", 4001, "", {"response_id": "resp_1", "audio_end_offset_ms": 4000}),
    ("speech_stopped", 5000, "", {"audio_end_ms": 4900}),
    ("playout_started", 6000, "", {"response_id": "resp_2"}),
    ("playout_ended", 7000, "", {"response_id": "resp_2", "audio_end_offset_ms": 8000}),
    ("user_speech_ai_silent", 8500, "playout_ended_500ms_ago", {"ms_since_playout_end": 500}),
    ("speech_stopped", 9000, "", {}),
    ("drain_started", 9100, "", {"expected_wait_ms": 600}),
    (
        "drain_completed",
        9700,
        "",
        {"expected_wait_ms": 600, "actual_wait_ms": 600, "final_mark_echoed": True},
    ),
    ("stream_ended", 10000, "", {"end_reason": "hangup"}),
]


def test_scale_spans_the_call_with_a_margin() -> None:
    timeline = build_timeline(CALL)

    assert timeline.duration_ms == 10300
    assert x_of(0, PLOT_WIDTH / timeline.duration_ms) == PLOT_X
    assert [t.label for t in timeline.ticks] == [f"{s} s" for s in range(11)]
    assert timeline.ticks[-1].x == pytest.approx(PLOT_X + 10000 * PLOT_WIDTH / 10300, abs=0.1)


def test_bars_per_playout_speech_and_drain() -> None:
    timeline = build_timeline(CALL)
    scale = PLOT_WIDTH / timeline.duration_ms

    spans = [(b.kind, b.variant, b.offset_ms, b.end_ms) for b in timeline.bars]
    assert spans == [
        ("playout", "a", 1000, 4000),
        ("playout", "b", 6000, 8000),  # ends where the audio ended, not when it was logged
        ("speech", "barge", 4000, 5000),
        ("speech", "silent", 8500, 9000),
        ("drain", "ok", 9100, 9700),
    ]
    first = timeline.bars[0]
    assert first.x == x_of(1000, scale)
    assert first.width == pytest.approx(3000 * scale, abs=0.2)
    assert first.label == "resp_1"
    assert len({b.y for b in timeline.bars}) == 3  # one lane each


def test_markers_carry_the_figures() -> None:
    markers = build_timeline(CALL).markers

    assert [(m.kind, m.offset_ms) for m in markers] == [
        ("barge_in", 4000),
        ("user_speech_ai_silent", 8500),
        ("stream_ended", 10000),
    ]
    barge_in = markers[0]
    assert barge_in.label == "barge-in 2000 ms left"
    assert "playout_remaining_ms=2000" in barge_in.title
    assert "audio_end_ms=3000" in barge_in.title
    assert "reaction_ms=0.5" in barge_in.title
    assert markers[1].label == "AI silent: playout_ended_500ms_ago"
    assert markers[2].label == "hangup (hangup)"


def test_crowded_labels_move_to_free_rows_and_stay_inside() -> None:
    rows: list[TimelineRow] = [
        ("barge_in", 5000, "", {"playout_remaining_ms": 100}),
        ("barge_in", 5100, "", {"playout_remaining_ms": 200}),
        ("stream_ended", 60000, "", {"end_reason": "a-rather-long-reason"}),
    ]

    first, second, last = build_timeline(rows).markers

    assert first.label_y != second.label_y
    assert last.label_anchor == "end"
    assert last.label_x < last.x <= WIDTH


def test_open_intervals_run_to_the_end_and_are_never_invisible() -> None:
    rows: list[TimelineRow] = [
        ("playout_started", 0, "", {"response_id": "r"}),
        ("drain_started", 100, "", {"expected_wait_ms": 5}),
        ("barge_in", 200, "", {}),
        ("stream_ended", 400_000, "", {}),
    ]

    timeline = build_timeline(rows)

    assert {b.kind: b.end_ms for b in timeline.bars} == {
        "playout": 400_000,
        "speech": 400_000,
        "drain": 400_000,
    }
    assert timeline.bars[2].variant == "cut"
    assert len(timeline.ticks) <= 12
    assert all(b.width >= 2 for b in build_timeline([("barge_in", 10, "", {})]).bars)


def test_an_empty_call_still_draws_an_axis() -> None:
    timeline = build_timeline([])

    assert timeline.bars == []
    assert timeline.markers == []
    assert timeline.duration_ms == 1030
    assert [t.label for t in timeline.ticks] == ["0 s", "1 s"]
