"""The timeline's shapes as SVG markup: escaped, and the hooks the browser tests read."""

from __future__ import annotations

from calls.review.timeline import build_timeline
from calls.templatetags.call_timeline import timeline_shapes

ROWS = [
    ("stream_started", 0, "", {}),
    ("response_started", 100, "", {"response_id": "r<1>"}),
    ("playout_started", 200, "", {"response_id": "r<1>", "item_id": "i1"}),
    (
        "barge_in",
        1200,
        "playout_active_800ms",
        {
            "response_id": "r<1>",
            "item_id": "i1",
            "playout_remaining_ms": 800,
            "pending_ms": 0,
            "unplayed_ms": 800,
            "audio_end_ms": 1000,
            "reaction_ms": 0.4,
            "heard_text": '<script>alert(1)</script> "ships" o\'clock',
        },
    ),
    ("playout_ended", 1201, "", {"response_id": "r<1>", "audio_ms": 1000}),
]


def test_every_value_from_the_rows_is_escaped() -> None:
    markup = timeline_shapes(build_timeline(ROWS))

    assert "<script>" not in markup
    assert "r<1>" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;ships&quot; o&#x27;clock" in markup
    assert "response r&lt;1&gt;" in markup


def test_each_shape_is_a_group_with_its_kind_and_offset() -> None:
    timeline = build_timeline(ROWS)

    markup = timeline_shapes(timeline)

    assert markup.count("<g ") == markup.count("</g>") == len(timeline.shapes)
    assert 'data-kind="playout" data-offset-ms="200"' in markup
    assert 'data-kind="clear" data-offset-ms="1200"' in markup
