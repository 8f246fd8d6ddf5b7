"""Caller sounds on the timeline: each verdict a bar in a lane of its own from the sound's
onset to the verdict, the answer's pauses over its audio, and both listed in words."""

from __future__ import annotations

from typing import Any

import pytest

from calls.review.timeline import Shape, Timeline, TimelineRow, build_timeline
from calls.templatetags.call_timeline import timeline_shapes


def verdict(
    offset_ms: int, verdict: str, decided_by: str, decision_ms: int, **details: Any
) -> TimelineRow:
    figures = {
        "verdict": verdict,
        "decided_by": decided_by,
        "decision_ms": decision_ms,
        "speech_onset_offset_ms": offset_ms - decision_ms,
        "item_ids": ["item_u"],
        "voice_ms": 360,
        "sounds": 1,
        "voice_frames": 18,
        "echo_frames": 0,
        "words": "",
        "paused": False,
        "interruptible": True,
    }
    return ("turn_verdict", offset_ms, "playout_active_900ms", figures | details)


def paused(offset_ms: int, heard_ms: int) -> TimelineRow:
    return (
        "answer_paused",
        offset_ms,
        "",
        {"item_id": "item_a", "heard_ms": heard_ms, "requeued_ms": 800},
    )


def resumed(offset_ms: int, gap_ms: int | None) -> TimelineRow:
    return ("answer_resumed", offset_ms, "", {"gap_ms": gap_ms})


def only(timeline: Timeline, kind: str) -> Shape:
    (shape,) = timeline.of_kind(kind)
    return shape


def lane(timeline: Timeline, key: str) -> tuple[float, float]:
    found = next(lane for lane in timeline.lanes if lane.key == key)
    return found.y, found.y + found.height


ANSWER: list[TimelineRow] = [
    ("stream_started", 0, "", {}),
    ("response_started", 570, "", {"response_id": "resp_1"}),
    ("playout_started", 600, "", {"response_id": "resp_1", "item_id": "item_a"}),
]
HEARD_TO_THE_END: TimelineRow = (
    "playout_ended",
    9000,
    "",
    {"response_id": "resp_1", "audio_end_offset_ms": 9000, "audio_ms": 8400},
)
SOUNDS: list[TimelineRow] = [
    *ANSWER,
    paused(2000, heard_ms=1400),
    verdict(2450, "backchannel", "backchannel_words", 1200, words="uh-huh", paused=True),
    resumed(2450, gap_ms=420),
    verdict(4000, "noise", "not_speech", 300, voice_ms=120),
    verdict(5000, "echo", "echo", 250, voice_ms=200, echo_frames=9),
    paused(6100, heard_ms=5500),
    verdict(
        6400, "interruption", "length", 900, words="wait, stop", paused=True, stopped_hearing_ms=600
    ),
    HEARD_TO_THE_END,
]


def test_each_verdict_is_a_bar_from_the_onset_to_the_verdict_in_a_lane_of_its_own() -> None:
    timeline = build_timeline(SOUNDS)

    bars = timeline.of_kind("verdict")

    assert [(b.variant, b.offset_ms, b.end_ms) for b in bars] == [
        ("backchannel", 1250, 2450),
        ("noise", 3700, 4000),
        ("echo", 4750, 5000),
        ("interruption", 5500, 6400),
    ]
    top, bottom = lane(timeline, "sounds")
    for bar in bars:
        assert bar.body is not None
        assert top <= bar.body.y
        assert bar.body.y + bar.body.height <= bottom
        assert bar.body.x == timeline.x_of(bar.offset_ms)
        assert bar.body.x + bar.body.width == pytest.approx(timeline.x_of(bar.end_ms or 0), abs=0.2)
    assert lane(timeline, "caller")[1] < top < lane(timeline, "hangup")[0]
    assert [lane.name for lane in timeline.lanes if lane.key == "sounds"] == ["Caller sounds"]


def test_a_verdicts_evidence_is_in_its_data_and_its_tooltip() -> None:
    backchannel, *_, interruption = build_timeline(SOUNDS).of_kind("verdict")

    assert dict(backchannel.data) == {
        "verdict": "backchannel",
        "decided-by": "backchannel_words",
        "onset-ms": "1250",
        "decided-ms": "2450",
        "decision-ms": "1200",
        "voice-ms": "360",
        "paused": "true",
        "interruptible": "true",
        "stopped-hearing-ms": "",
    }
    assert backchannel.title.splitlines() == [
        "Caller said “uh-huh” (360 ms): backchannel, by its words, decided 1.2 s after they "
        "began; the answer was paused meanwhile, then went on",
        "from the onset at 1.250 s to the verdict at 2.450 s: decided_by=backchannel_words, "
        "decision 1200 ms",
        "voice 360 ms in 1 sound(s): 18 voice frames, 0 echo frames",
        "words: “uh-huh”",
        "the answer was paused while it was judged",
        "item item_u",
    ]
    assert dict(interruption.data)["stopped-hearing-ms"] == "600"
    assert "the caller stopped hearing the AI 600 ms after the onset" in interruption.title


def test_a_verdict_is_labelled_by_what_it_was() -> None:
    timeline = build_timeline(SOUNDS)

    labels = [bar.label for bar in timeline.of_kind("verdict")]

    # The 1.2 s backchannel holds its verdict and the start of its words; the short
    # noise and echo are labelled above their bars.
    assert [(label.text, label.row) for label in labels if label is not None] == [
        ("backchannel “uh…", -1),
        ("noise", 0),
        ("echo", 0),
        ("interruption", -1),  # room for its verdict, not for a word more
    ]


def test_a_long_sound_holds_its_verdict_and_words_inside_its_bar() -> None:
    rows = [verdict(9000, "interruption", "words", 4000, words="no, I wanted the blue one")]

    bar = only(build_timeline(rows), "verdict")

    assert bar.label is not None
    assert bar.label.row == -1
    assert bar.label.text == "interruption “no, I wanted the blue one”"


def test_an_interruption_during_a_passage_heard_whole_says_it_did_not_cut() -> None:
    bar = only(
        build_timeline([verdict(3000, "interruption", "length", 900, interruptible=False)]),
        "verdict",
    )

    assert (bar.variant, dict(bar.data)["interruptible"]) == ("interruption", "false")
    assert bar.label is not None
    assert bar.label.text == "interruption, not cut"
    assert "not interruptible: a passage heard whole" in bar.title
    assert "stopped hearing" not in bar.title


def test_a_verdict_the_review_does_not_know_is_drawn_plainly() -> None:
    bar = only(build_timeline([verdict(3000, "laughter", "new_rule", 400)]), "verdict")

    assert (bar.variant, dict(bar.data)["verdict"]) == ("other", "laughter")
    assert "laughter, by new_rule" in bar.title


def test_the_pauses_are_drawn_over_the_ai_audio_to_where_the_answer_went_on() -> None:
    timeline = build_timeline(SOUNDS)

    first, second = timeline.of_kind("pause")

    assert (first.variant, first.offset_ms, first.end_ms) == ("resumed", 2000, 2450)
    assert dict(first.data) == {"outcome": "resumed", "gap-ms": "420", "item": "item_a"}
    assert first.label is not None
    assert first.label.text == "paused, gap 420 ms"
    assert first.title.splitlines()[0] == (
        "The answer paused at 2.000 s while a caller's sound was judged (1.4 s of its item "
        "heard, 800 ms kept to send again); resumed at 2.450 s: the caller heard 420 ms of "
        "silence"
    )
    assert (second.variant, second.offset_ms, second.end_ms) == ("interrupted", 6100, 6400)
    assert second.label is not None
    assert second.label.text == "paused, then interrupted"
    heard = only(timeline, "playout")
    top, bottom = lane(timeline, "ai")
    for pause in (first, second):
        assert pause.body is not None
        assert top <= pause.body.y
        assert pause.body.y + pause.body.height <= bottom
    # Drawn after the audio heard, so over it: the caller heard silence there.
    assert timeline.shapes.index(heard) < timeline.shapes.index(first)


def test_a_pause_never_resumed_runs_to_the_end_and_a_resume_alone_is_drawn_back_by_its_gap() -> (
    None
):
    rows = [
        *ANSWER,
        resumed(3000, gap_ms=350),
        paused(5000, heard_ms=4000),
        ("stream_ended", 8000, "", {"end_reason": "caller_hangup"}),
    ]
    timeline = build_timeline(rows)

    alone, open_ = timeline.of_kind("pause")

    assert (alone.variant, alone.offset_ms, alone.end_ms) == ("resumed", 2650, 3000)
    assert "its pause was not logged" in alone.title
    assert (open_.variant, open_.offset_ms, open_.end_ms) == ("open", 5000, 8000)
    assert open_.label is not None
    assert open_.label.text == "paused, never resumed"
    assert "drawn to the end" in open_.title


def test_the_sounds_lane_is_drawn_only_for_a_call_with_sounds_judged() -> None:
    keys = [lane.key for lane in build_timeline([*ANSWER, HEARD_TO_THE_END]).lanes]

    assert "sounds" not in keys
    assert "sounds" in [lane.key for lane in build_timeline(SOUNDS).lanes]


def test_the_sounds_and_pauses_are_listed_in_words_in_the_order_they_began() -> None:
    timeline = build_timeline(SOUNDS)

    entries = [(e.kind, e.variant, e.at, e.element_id) for e in timeline.sounds]

    assert entries == [
        ("verdict", "backchannel", "1.250 s", "tl-verdict-1"),
        ("pause", "resumed", "2.000 s", "tl-pause-1"),
        ("verdict", "noise", "3.700 s", "tl-verdict-2"),
        ("verdict", "echo", "4.750 s", "tl-verdict-3"),
        ("verdict", "interruption", "5.500 s", "tl-verdict-4"),
        ("pause", "interrupted", "6.100 s", "tl-pause-2"),
    ]
    assert timeline.sounds[0].words.startswith("Caller said “uh-huh” (360 ms): backchannel")
    assert timeline.sounds[-1].words.endswith("the sound was an interruption, at 6.400 s")
    ids = {shape.element_id for shape in timeline.shapes}
    assert all(entry.element_id in ids for entry in timeline.sounds)
    assert build_timeline([*ANSWER, HEARD_TO_THE_END]).sounds == []


def test_the_header_counts_the_sounds_judged() -> None:
    assert " · 0 barge-ins · 4 caller sounds judged · " in build_timeline(SOUNDS).header
    assert "caller sound" not in build_timeline(ANSWER).header


def test_labels_in_the_sounds_lane_never_overprint() -> None:
    kinds = ("backchannel", "noise", "echo", "interruption")
    rows = [verdict(1000 + 200 * n, kinds[n % 4], "short", 150) for n in range(24)]

    timeline = build_timeline(rows)

    labels = [s.label for s in timeline.of_kind("verdict") if s.label is not None]
    assert len(labels) == 24
    for a, b in ((a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]):
        apart = a.right <= b.left or b.right <= a.left or a.bottom <= b.top or b.bottom <= a.top
        assert apart, (a, b)
    assert next(lane for lane in timeline.lanes if lane.key == "sounds").label_rows > 1


def test_a_callers_words_are_escaped_in_the_markup() -> None:
    rows = [verdict(3000, "interruption", "words", 900, words="<script>alert(1)</script> & co")]

    markup = timeline_shapes(build_timeline(rows))

    assert "<script>" not in markup
    assert "“&lt;script&gt;alert(1)&lt;/script&gt; &amp; co”" in markup
    assert 'data-kind="verdict" data-offset-ms="2100" data-end-ms="3000"' in markup
    assert 'data-verdict="interruption" data-decided-by="words"' in markup
