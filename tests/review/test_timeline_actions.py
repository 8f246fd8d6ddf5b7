"""What the agent did on the timeline: tool calls, holding lines, keypad input, transfers."""

from __future__ import annotations

from typing import Any

from calls.review.timeline import Shape, Timeline, TimelineRow, build_timeline
from calls.templatetags.call_timeline import timeline_shapes


def tool_call(started_ms: int, duration_ms: int, **details: Any) -> TimelineRow:
    return (
        "tool_call",
        started_ms + duration_ms + 2,  # written once the outcome is known
        "",
        {
            "call_id": "fc_1",
            "name": "lookup_order",
            "arguments": {"order_id": "A-4521", "card": "[redacted]"},
            "outcome": "ok",
            "error": "",
            "duration_ms": duration_ms,
            "started_offset_ms": started_ms,
            "dispatch_ms": 0.8,
            "reply_ms": 1.25,
            "caller_spoke": False,
            "answer_asked": True,
        }
        | details,
    )


def playout(response_id: str, start_ms: int, end_ms: int) -> list[TimelineRow]:
    return [
        ("playout_started", start_ms, "", {"response_id": response_id, "item_id": "i"}),
        (
            "playout_ended",
            end_ms,
            "",
            {"response_id": response_id, "audio_end_offset_ms": end_ms, "audio_ms": end_ms},
        ),
    ]


def only(timeline: Timeline, kind: str) -> Shape:
    (shape,) = timeline.of_kind(kind)
    return shape


def lane(timeline: Timeline, key: str) -> tuple[float, float]:
    found = next(lane for lane in timeline.lanes if lane.key == key)
    return found.y, found.y + found.height


def ordered(rows: list[TimelineRow]) -> list[TimelineRow]:
    return sorted(rows, key=lambda row: row[1])


TRANSFERRED = ordered(
    [
        ("stream_started", 0, "", {}),
        *playout("resp_1", 600, 2000),
        ("dtmf", 2400, "", {"digit": "4"}),
        ("dtmf", 2550, "", {"digit": "#"}),
        ("keypad_input", 3100, "", {"digits": "4#"}),
        tool_call(4200, 1150),
        ("tool_hold", 5200, "", {"call_ids": ["fc_1"], "silent_ms": 1000, "holds": 1}),
        *playout("resp_2", 5600, 8000),
        (
            "transfer_requested",
            9500,
            "",
            {"call_id": "fc_3", "target": "Sales", "number": "+15550003333"},
        ),
        ("drain_started", 10000, "", {"expected_wait_ms": 1000, "end_reason": "transferred"}),
        (
            "drain_completed",
            11100,
            "",
            {"actual_wait_ms": 1100, "final_mark_echoed": True, "cut_off_ms": 0},
        ),
        ("stream_ended", 11200, "", {"end_reason": "transferred", "transfer_target": "Sales"}),
    ]
)


def test_a_tool_call_is_a_bar_in_a_lane_of_its_own_for_as_long_as_it_ran() -> None:
    timeline = build_timeline(TRANSFERRED)

    tool = only(timeline, "tool")
    assert (tool.offset_ms, tool.end_ms, tool.variant) == (4200, 5350, "ok")
    assert tool.body is not None
    top, bottom = lane(timeline, "tools")
    assert top <= tool.body.y
    assert tool.body.y + tool.body.height <= bottom
    assert tool.body.x == timeline.x_of(4200)
    assert dict(tool.data) == {
        "tool": "lookup_order",
        "outcome": "ok",
        "duration-ms": "1150",
        "dispatch-ms": "0.8",
        "reply-ms": "1.2",
        "call-id": "fc_1",
    }
    assert tool.title.splitlines() == [
        "tool lookup_order: ok in 1150 ms, 4.200 s to 5.350 s",
        'arguments: card="[redacted]", order_id="A-4521"',
        "dispatch 0.8 ms (arguments complete to function started), "
        "reply 1.2 ms (function returned to its output sent)",
        "the model was asked to answer with its result",
        "call fc_1; its outcome recorded at 5.352 s",
    ]
    assert tool.label is not None
    assert tool.label.text.startswith("lookup_order")


def test_the_tools_lane_is_drawn_only_for_a_call_with_tools() -> None:
    without = [row for row in TRANSFERRED if row[0] not in ("tool_call", "tool_hold")]

    assert "tools" in [lane.key for lane in build_timeline(TRANSFERRED).lanes]
    assert "tools" not in [lane.key for lane in build_timeline(without).lanes]


def test_a_failed_timed_out_refused_or_unrun_tool_says_so() -> None:
    rows = [
        tool_call(1000, 400, outcome="error", error="stock service down", caller_spoke=True),
        tool_call(2000, 10_000, name="slow", outcome="timeout", answer_asked=False),
        tool_call(13_000, 1, name="ghost", outcome="unknown_tool", arguments="{not json"),
        tool_call(14_000, 0, name="late", outcome="not_run", arguments={}),
        tool_call(15_000, 5, name="odd", outcome="something_new"),
    ]

    tools = build_timeline(rows).of_kind("tool")

    assert [(t.variant, t.label.text if t.label else "") for t in tools] == [
        ("error", "lookup_order: failed"),
        ("timeout", 'slow timed out 10000 ms · card="[redacted]", order_id="A-4521"'),  # inside
        ("unknown_tool", "ghost: unknown tool"),
        ("not_run", "late: not run"),
        ("other", "odd: something_new"),
    ]
    assert "error: stock service down" in tools[0].title
    assert "the caller spoke while it ran" in tools[0].title
    assert "no answer asked for with its result" in tools[1].title
    assert 'arguments: "{not json"' in tools[2].title
    assert "no arguments" in tools[3].title


def test_a_tool_whose_start_was_not_logged_ends_where_its_outcome_was_written() -> None:
    kind, offset, status, details = tool_call(1000, 400)
    details = {k: v for k, v in details.items() if k != "started_offset_ms"}

    tool = only(build_timeline([(kind, offset, status, details)]), "tool")

    assert (tool.offset_ms, tool.end_ms) == (offset - 400, offset)


def test_long_arguments_are_cut_in_the_tooltip() -> None:
    tool = only(build_timeline([tool_call(1000, 400, arguments={"note": "x" * 500})]), "tool")

    (arguments,) = [line for line in tool.title.splitlines() if line.startswith("arguments")]
    assert len(arguments) <= len("arguments: ") + 160
    assert arguments.endswith("…")


def test_holding_lines_keypad_input_and_the_transfer_are_marks_in_their_lanes() -> None:
    timeline = build_timeline(TRANSFERRED)

    hold, keypad, transfer = (only(timeline, kind) for kind in ("hold", "keypad", "transfer"))
    for shape, key in ((hold, "tools"), (keypad, "caller"), (transfer, "hangup")):
        assert shape.line is not None
        assert shape.glyph
        top, bottom = lane(timeline, key)
        assert top - 1 <= shape.line.y1 < shape.line.y2 <= bottom + 1
    assert (hold.offset_ms, dict(hold.data)) == (5200, {"holds": "1", "silent-ms": "1000"})
    assert hold.title.splitlines() == [
        "holding line 1 asked for at 5.200 s: the caller had heard nothing for 1000 ms",
        "while tool call fc_1 ran",
    ]
    assert keypad.label is not None
    assert keypad.label.text == "keypad 4#"
    assert "keypad “4#” given to the model as the caller's input" in keypad.title
    assert transfer.label is not None
    assert transfer.label.text == "transfer → Sales"
    assert dict(transfer.data) == {"target": "Sales", "number": "+15550003333"}
    assert transfer.title.startswith("transfer to Sales (+15550003333) requested at 9.500 s")
    assert timeline.of_kind("dtmf") == []  # the digits' own rows stay in the log


def test_a_transfer_drain_and_the_stream_end_name_the_target() -> None:
    timeline = build_timeline(TRANSFERRED)

    drain, end = only(timeline, "drain"), only(timeline, "stream_ended")

    assert (drain.variant, dict(drain.data)) == (
        "completed",
        {"outcome": "completed", "transfer": "Sales"},
    )
    assert drain.label is not None
    assert drain.label.text == "drained"
    assert drain.title.startswith("transfer drain 10.000 s to 11.100 s: completed")
    assert drain.title.splitlines()[0].endswith("then Twilio dials Sales")
    assert end.label is not None
    assert end.label.text == "end: transferred → Sales"
    assert end.title == "stream ended at 11.200 s: transferred; then Twilio dials Sales"


def test_a_transfer_the_caller_spoke_over_is_an_interrupted_transfer() -> None:
    asked = ("transfer_requested", 2000, "", {"target": "Billing", "number": "+15550004444"})
    draining = ("drain_started", 2100, "", {"expected_wait_ms": 900, "end_reason": "transferred"})
    cancel = ("hangup_cancelled", 2501, "", {"reason": "barge_in", "transfer_target": "Billing"})

    during = only(build_timeline([asked, draining, cancel]), "drain")
    before = only(build_timeline([asked, cancel]), "drain")

    assert (during.variant, during.offset_ms, during.end_ms) == ("cancelled", 2100, 2501)
    assert (before.variant, before.offset_ms) == ("cancelled", 2000)
    for drain in (during, before):
        assert drain.label is not None
        assert drain.label.text == "transfer interrupted"
        assert "the transfer to Billing was interrupted, the call went on" in drain.title
    assert "before its drain began" in before.title


def test_a_hangup_drain_is_still_a_goodbye() -> None:
    rows: list[TimelineRow] = [
        ("end_call_requested", 1000, "", {"call_id": "fc_1"}),
        ("drain_started", 1100, "", {"expected_wait_ms": 900, "end_reason": "agent_hangup"}),
        ("drain_completed", 2000, "", {"actual_wait_ms": 900, "final_mark_echoed": True}),
    ]

    drain = only(build_timeline(rows), "drain")

    assert drain.label is not None
    assert drain.label.text == "drained"
    assert dict(drain.data) == {"outcome": "completed"}
    assert drain.title.startswith("hangup drain")


def test_the_header_counts_the_tool_calls() -> None:
    assert " · 0 barge-ins · 1 tool call · " in build_timeline(TRANSFERRED).header
    assert "tool call" not in build_timeline(TRANSFERRED[:3]).header


def test_labels_in_the_tools_lane_never_overprint() -> None:
    rows = [tool_call(1000 + 150 * n, 100, name=f"tool_{n}") for n in range(12)]
    rows += [("tool_hold", 1020 + 150 * n, "", {"holds": n}) for n in range(12)]

    timeline = build_timeline(ordered(rows))

    labels = [
        s.label for s in timeline.shapes if s.label is not None and s.kind in ("tool", "hold")
    ]
    assert len(labels) == 24
    for a, b in ((a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]):
        apart = a.right <= b.left or b.right <= a.left or a.bottom <= b.top or b.bottom <= a.top
        assert apart, (a, b)


def test_a_tool_calls_words_are_escaped_in_the_markup() -> None:
    rows = [tool_call(1000, 400, name="<b>x</b>", arguments={"q": "<script>"}, error="a&b")]

    markup = timeline_shapes(build_timeline(rows))

    assert "<script>" not in markup
    assert "<b>" not in markup
    assert 'data-tool="&lt;b&gt;x&lt;/b&gt;"' in markup
    assert 'data-kind="tool" data-offset-ms="1000" data-end-ms="1400"' in markup


def test_keypad_digits_typed_outside_the_conversation_are_marked_ignored() -> None:
    rows: list[TimelineRow] = [("keypad_input", 500, "", {"digits": "12", "ignored": "opening"})]

    keypad = only(build_timeline(rows), "keypad")

    assert keypad.variant == "ignored"
    assert keypad.label is not None
    assert keypad.label.text == "keypad 12 (ignored)"
    assert keypad.title == "keypad “12” at 0.500 s, not given to the model: opening"


def test_a_tool_cut_off_before_it_ran_or_orphaned_by_a_new_session_says_so() -> None:
    cut_off = (
        "tool_call",
        2000,
        "",
        {"call_id": "fc_7", "name": "lookup_order", "arguments": {}, "outcome": "not_run",
         "error": "the caller interrupted the answer that called it", "duration_ms": 0,
         "caller_spoke": True, "answer_asked": False},
    )  # fmt: skip
    orphaned = tool_call(3000, 200, call_id="fc_8", session_replaced=True)

    first, second = build_timeline([cut_off, orphaned]).of_kind("tool")

    assert (first.variant, first.offset_ms, first.end_ms) == ("not_run", 2000, 2000)
    assert dict(first.data)["dispatch-ms"] == dict(first.data)["reply-ms"] == ""
    assert "dispatch - (arguments complete" in first.title
    assert "error: the caller interrupted the answer that called it" in first.title
    assert "its model session was replaced meanwhile" in second.title
