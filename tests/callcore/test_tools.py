"""The model's tool calls, the holding line, the transfer and the keypad, on a stepped clock."""

from __future__ import annotations

import json

import pytest

from callcore import CoreConfig, EndReason, RecordKind, ToolResult
from callcore import tools as outcome
from callcore.protocol import realtime as rt
from tests.callcore.harness import INTERRUPT_AT_ONCE, STREAM_SID, CoreRun, tone

HOLD_MS = 1000


def tool_run(**config: object) -> CoreRun:
    defaults: dict[str, object] = {
        "stream_sid": STREAM_SID,
        "tool_hold_after_ms": HOLD_MS,
        "tool_hold_instructions": "Say you are still checking.",
        "transfer_targets": {"billing": "+15550001111"},
        "keypad_pause_ms": 1500,
        "turns": INTERRUPT_AT_ONCE,
    }
    return CoreRun(config=CoreConfig(**{**defaults, **config}))  # type: ignore[arg-type]


def ask_tool(run: CoreRun, ms: int = 400, *, done: bool = True, name: str = "lookup") -> None:
    """Response r1: `ms` of "let me check" audio, then a call of `name`."""
    run.event(rt.ResponseCreated("r1"))
    if ms:
        run.event(rt.AudioDelta("r1", "i1", tone(0x44, ms)))
        run.event(rt.AudioDone("r1", "i1"))
    run.event(rt.FunctionCallDone("r1", "call_1", name, '{"order": "42"}'))
    if done:
        finish_r1(run, name)


def finish_r1(run: CoreRun, name: str = "lookup") -> None:
    call = rt.FunctionCallDone("r1", "call_1", name, '{"order": "42"}')
    run.event(rt.ResponseDone("r1", "completed", (), ("i1",), "", (call,)))


def result(run: CoreRun, started: float, value: object = None, what: str = outcome.OK) -> None:
    """The shell's report: the tool ran from `started` until now."""
    output = json.dumps(value if value is not None else {"status": "shipped"})
    run.core.tool_finished(
        ToolResult("call_1", what, output, {"order": "42"}, run.now, started), run.now
    )
    run.settle()


def creates(run: CoreRun) -> list[dict[str, object]]:
    return run.model_events("response.create")


def test_a_tool_runs_once_and_its_result_is_answered_after_the_response_is_done() -> None:
    run = tool_run()
    ask_tool(run, done=False)
    [request] = run.tools
    assert (request.call_id, request.name, request.arguments) == (
        "call_1",
        "lookup",
        '{"order": "42"}',
    )
    assert request.asked_at == run.now
    run.step(0.2)
    result(run, started=0.0)  # the tool returned while its response still runs
    [output] = run.model_events("conversation.item.create")
    assert output["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"status": "shipped"}',
    }
    assert creates(run) == []  # never while a response is active
    finish_r1(run)  # response.done repeats the call: not run again
    assert len(run.tools) == 1
    assert creates(run) == [{"type": "response.create"}]
    [record] = run.of_kind(RecordKind.TOOL_CALL)
    assert record.details["outcome"] == "ok"
    assert record.details["name"] == "lookup"
    assert record.details["arguments"] == {"order": "42"}
    assert record.details["answer_asked"] is True
    assert record.details["duration_ms"] == 200


def test_the_dispatch_figures_are_the_shells_times() -> None:
    run = tool_run()
    ask_tool(run)
    run.step(0.05)
    started = run.now
    run.step(0.3)
    returned = run.now
    run.step(0.302)
    run.core.tool_finished(ToolResult("call_1", outcome.OK, "{}", {}, returned, started), run.now)
    run.settle()
    [record] = run.of_kind(RecordKind.TOOL_CALL)
    assert record.details["dispatch_ms"] == pytest.approx(50)
    assert record.details["duration_ms"] == 250
    assert record.details["reply_ms"] == pytest.approx(2)


def test_a_slow_tool_gets_a_holding_line_after_a_second_of_silence() -> None:
    run = tool_run()
    ask_tool(run, ms=400)
    run.step(0.4 + HOLD_MS / 1000 - 0.01)
    assert creates(run) == []  # 400 ms heard, then not yet a second of silence
    run.step(1.5)
    [hold] = creates(run)
    assert hold["response"] == {
        "instructions": "Say you are still checking.",
        "tool_choice": "none",
    }
    [record] = run.of_kind(RecordKind.TOOL_HOLD)
    assert record.at == pytest.approx(1.4, abs=0.03)
    assert record.details["silent_ms"] == pytest.approx(1000, abs=30)
    # While the holding line is asked for and plays, no other.
    run.step(2.0)
    run.event(rt.ResponseCreated("hold1"))
    run.event(rt.AudioDelta("hold1", "ih", tone(0x55, 600)))
    run.event(rt.AudioDone("hold1", "ih"))
    run.event(rt.ResponseDone("hold1", "completed", (), ("ih",)))
    run.step(2.6 + HOLD_MS / 1000 - 0.05)
    assert len(creates(run)) == 1
    run.step(3.7)  # another second of silence: another line
    assert len(creates(run)) == 2
    assert run.of_kind(RecordKind.TOOL_HOLD)[-1].details["holds"] == 2
    result(run, started=0.4)  # while the second holding line is asked for
    assert len(creates(run)) == 2
    run.event(rt.ResponseCreated("hold2"))
    run.event(rt.ResponseDone("hold2", "completed", ()))
    assert creates(run)[-1] == {"type": "response.create"}  # the answer, once it is done


def test_no_holding_line_once_the_tool_returned() -> None:
    run = tool_run()
    ask_tool(run, ms=400)
    run.step(0.9)
    result(run, started=0.4)
    run.step(5.0)
    assert run.of_kind(RecordKind.TOOL_HOLD) == []
    assert creates(run) == [{"type": "response.create"}]


def test_a_call_of_an_answer_the_caller_cut_off_is_not_run() -> None:
    run = tool_run()
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.AudioDelta("r1", "i1", tone(0x44, 2000)))
    run.caller_speaks(0.5)  # a barge-in: r1 is cut
    run.event(rt.FunctionCallDone("r1", "call_1", "lookup", "{}"))
    assert run.tools == []
    [output] = run.model_events("conversation.item.create")
    assert output["item"]["call_id"] == "call_1"
    assert "Not run" in output["item"]["output"]
    [record] = run.of_kind(RecordKind.TOOL_CALL)
    assert record.details["outcome"] == "not_run"
    assert creates(run) == []  # the caller's own turn gets the answer


def test_a_tool_started_before_a_barge_in_finishes_and_the_model_gets_its_result() -> None:
    run = tool_run()
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.AudioDelta("r1", "i1", tone(0x44, 2000)))
    run.event(rt.FunctionCallDone("r1", "call_1", "lookup", "{}"))
    run.event(rt.ResponseDone("r1", "completed", (), ("i1",)))
    run.caller_speaks(0.5)
    assert len(run.barge_ins) == 1
    run.step(0.8)
    result(run, started=0.0)  # the caller still speaks
    [output] = run.model_events("conversation.item.create")
    assert output["item"]["type"] == "function_call_output"
    assert creates(run) == []  # server VAD answers the caller, with the result in hand
    [record] = run.of_kind(RecordKind.TOOL_CALL)
    assert record.details["caller_spoke"] is True
    assert record.details["answer_asked"] is False


def test_two_tools_of_one_answer_are_answered_once_both_returned() -> None:
    run = tool_run()
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.FunctionCallDone("r1", "call_1", "lookup", "{}"))
    run.event(rt.FunctionCallDone("r1", "call_2", "stock", "{}"))
    run.event(rt.ResponseDone("r1", "completed", ()))
    assert [t.call_id for t in run.tools] == ["call_1", "call_2"]
    result(run, started=0.0)
    assert creates(run) == []
    run.core.tool_finished(ToolResult("call_2", outcome.OK, "{}", {}, run.now, 0.0), run.now)
    run.settle()
    assert creates(run) == [{"type": "response.create"}]


def test_a_replaced_session_is_told_the_old_ones_call_with_its_result() -> None:
    run = tool_run()
    ask_tool(run, ms=0)
    run.core.model_closed(False, run.now)
    run.settle()
    assert run.replacements
    run.core.model_replaced(run.now)
    run.settle()
    asked_before = len(creates(run))
    result(run, started=0.0)
    made, output = [
        e["item"] for e in run.model_events("conversation.item.create") if "call_id" in e["item"]
    ]
    assert made == {
        "type": "function_call",
        "call_id": "call_1",
        "name": "lookup",
        "arguments": '{"order": "42"}',
    }
    assert output["type"] == "function_call_output"
    assert len(creates(run)) == asked_before + 1  # and it is answered
    [record] = run.of_kind(RecordKind.TOOL_CALL)
    assert record.details["session_replaced"] is True


def test_a_result_racing_the_callers_answer_waits_for_it_and_is_answered_after() -> None:
    run = tool_run()
    ask_tool(run, ms=0)
    run.caller_speaks(0.2)
    run.event(rt.SpeechStopped(900, "item_user"))  # the caller's turn ends: answered
    assert creates(run) == [{"type": "response.create"}]
    run.step(0.5)
    result(run, started=0.0)
    assert len(creates(run)) == 1  # an answer is on its way: the result's waits for it
    run.event(rt.ResponseCreated("r2"))
    run.event(rt.ResponseDone("r2", "completed", ()))
    assert len(creates(run)) == 2


def test_a_refused_answer_to_a_result_is_asked_again_once_the_active_one_ends() -> None:
    run = tool_run()
    ask_tool(run, ms=0)
    result(run, started=0.0)
    assert len(creates(run)) == 1
    # Server VAD's answer won the race: ours is refused.
    run.event(rt.ServerError("conversation_already_has_active_response", "active", "", ""))
    run.event(rt.ResponseCreated("vad"))
    run.event(rt.ResponseDone("vad", "completed", ()))
    assert len(creates(run)) == 2


def test_a_call_of_an_answer_server_vad_cancelled_while_unheard_is_not_run() -> None:
    run = tool_run()
    run.event(rt.ResponseCreated("r1"))
    run.caller_speaks(0.1)  # nothing of r1 was heard: not a barge-in, but VAD cancels r1
    run.event(rt.FunctionCallDone("r1", "call_1", "lookup", '{"ord'))
    assert run.tools == []
    [record] = run.of_kind(RecordKind.TOOL_CALL)
    assert record.details["outcome"] == "not_run"


def test_holding_lines_stop_after_their_limit() -> None:
    run = tool_run()
    run.core.tools.max_holds = 2
    ask_tool(run, ms=0)
    for n in range(3):
        run.step(run.now + 1.1)
        if run.core.asks.in_flight:
            run.event(rt.ResponseCreated(f"hold{n}"))
            run.event(rt.ResponseDone(f"hold{n}", "completed", ()))
    assert len(run.of_kind(RecordKind.TOOL_HOLD)) == 2


def test_a_call_that_ends_with_a_tool_under_way_records_it_as_abandoned() -> None:
    run = tool_run()
    ask_tool(run, ms=0)
    run.step(0.5)
    run.core.end(EndReason.CALLER_HANGUP, run.now)
    run.settle()
    [record] = run.of_kind(RecordKind.TOOL_CALL)
    assert record.details["outcome"] == "abandoned"
    assert record.details["duration_ms"] == 500
    assert "caller_hangup" in record.details["error"]


def test_keypad_entries_go_on_past_the_digits_recorded_one_by_one() -> None:
    run = tool_run()
    for _ in range(60):
        for digit in "12#":
            run.core.caller_dtmf(digit, run.now)
    run.settle()
    assert len(run.of_kind(RecordKind.KEYPAD_INPUT)) == 60


# --- the transfer ----------------------------------------------------------------------------


def ask_transfer(run: CoreRun, ms: int, target: str = "billing", *, done: bool = True) -> None:
    run.event(rt.ResponseCreated("t1"))
    run.event(rt.AudioDelta("t1", "it", tone(0x66, ms)))
    run.event(rt.AudioDone("t1", "it"))
    arguments = json.dumps({"target": target, "reason": "billing question"})
    run.event(rt.FunctionCallDone("t1", "call_t", rt.TRANSFER_TOOL, arguments))
    if done:
        run.event(rt.ResponseDone("t1", "completed", (), ("it",)))


def test_a_transfer_drains_its_handoff_line_then_ends_as_transferred() -> None:
    run = tool_run()
    ask_transfer(run, 800)
    [requested] = run.of_kind(RecordKind.TRANSFER_REQUESTED)
    assert requested.details == {"call_id": "call_t", "target": "billing", "number": "+15550001111"}
    run.step(0.79)
    assert run.ended is None  # the handoff line still plays
    run.step(1.0)
    assert run.ended is EndReason.TRANSFERRED
    [drain] = run.of_kind(RecordKind.DRAIN_COMPLETED)
    assert drain.details["final_mark_echoed"] is True
    assert drain.at == pytest.approx(0.8)
    assert run.heard_ms() == pytest.approx(800)
    assert run.updates[-1].fields["transfer_target"] == "billing"
    assert run.updates[-1].fields["end_reason"] == "transferred"
    [ended] = run.of_kind(RecordKind.STREAM_ENDED)
    assert ended.details["transfer_target"] == "billing"
    assert run.tools == []  # the platform's own tool: not the host's


def test_a_barge_in_during_the_handoff_cancels_the_transfer() -> None:
    run = tool_run()
    ask_transfer(run, 2000)
    run.caller_speaks(0.5)
    run.step(4.0)
    assert run.ended is None
    [cancelled] = run.of_kind(RecordKind.HANGUP_CANCELLED)
    assert cancelled.details == {"reason": "barge_in", "transfer_target": "billing"}
    [told] = [
        event
        for event in run.model_events("conversation.item.create")
        if event["item"]["call_id"] == "call_t"
    ]
    assert json.loads(told["item"]["output"]) == {"transferred": False, "reason": "barge_in"}


def test_an_unknown_transfer_target_is_a_tool_error_not_a_transfer() -> None:
    run = tool_run()
    ask_transfer(run, 200, target="sales")
    run.step(2.0)
    assert run.ended is None
    assert run.of_kind(RecordKind.TRANSFER_REQUESTED) == []
    [told] = run.model_events("conversation.item.create")
    assert "unknown transfer target 'sales'" in told["item"]["output"]
    assert "billing" in told["item"]["output"]
    assert creates(run) == [{"type": "response.create"}]
    [record] = run.of_kind(RecordKind.TOOL_CALL)
    assert record.details["outcome"] == "invalid_arguments"


# --- the keypad ------------------------------------------------------------------------------


def test_keypad_digits_go_to_the_model_together_at_the_hash() -> None:
    run = tool_run()
    for digit in "42#":
        run.core.caller_dtmf(digit, run.now)
        run.settle()
        run.step(run.now + 0.2)
    [typed] = run.model_events("conversation.item.create")
    assert typed["item"]["role"] == "user"
    assert "42" in typed["item"]["content"][0]["text"]
    assert creates(run) == [{"type": "response.create"}]
    [entry] = run.of_kind(RecordKind.KEYPAD_INPUT)
    assert entry.details == {"digits": "42"}
    assert len(run.of_kind(RecordKind.DTMF)) == 3


def test_keypad_digits_go_to_the_model_after_a_pause() -> None:
    run = tool_run()
    run.core.caller_dtmf("7", 0.0)
    run.settle()
    run.step(1.49)
    assert run.of_kind(RecordKind.KEYPAD_INPUT) == []
    run.core.caller_dtmf("3", run.now)  # the pause starts again
    run.settle()
    run.step(2.98)
    assert run.of_kind(RecordKind.KEYPAD_INPUT) == []
    run.step(3.0)
    [entry] = run.of_kind(RecordKind.KEYPAD_INPUT)
    assert entry.details == {"digits": "73"}
    assert entry.at == pytest.approx(2.99, abs=0.01)


def test_a_deploy_waits_for_a_tool_under_way_before_handing_the_call_over() -> None:
    run = tool_run()
    ask_tool(run, ms=0)
    run.core.hand_over(run.now, grace_s=10.0)
    run.step(1.0)
    assert run.ended is None  # a pause, but a result is owed (and a holding line asked)
    result(run, started=0.0)
    for response_id in ("hold", "answer"):  # the holding line, then the answer
        assert run.ended is None
        run.event(rt.ResponseCreated(response_id))
        run.event(rt.ResponseDone(response_id, "completed", ()))
    run.step(1.5)
    assert run.ended is EndReason.SERVER_SHUTDOWN


def test_a_late_repeat_of_a_cancelled_transfer_is_not_answered_twice() -> None:
    run = tool_run()
    ask_transfer(run, 2000, done=False)
    run.caller_speaks(0.5)
    call = rt.FunctionCallDone("t1", "call_t", rt.TRANSFER_TOOL, '{"target": "billing"}')
    run.event(rt.ResponseDone("t1", "cancelled", (), ("it",), "turn_detected", (call,)))
    told = [
        e
        for e in run.model_events("conversation.item.create")
        if e["item"].get("call_id") == "call_t"
    ]
    assert len(told) == 1


def test_a_deploy_does_not_turn_a_transfer_into_a_handover() -> None:
    run = tool_run()
    ask_transfer(run, 1500)
    run.core.hand_over(run.now, grace_s=0.5)
    run.step(2.0)
    assert run.ended is EndReason.TRANSFERRED
    assert run.heard_ms() == pytest.approx(1500)
