"""A model that goes quiet or away: noticed within its bound, replaced with the conversation
carried over, or the call ended as `model_unresponsive`. Stepped clock, no sockets."""

from __future__ import annotations

import base64

import pytest

from callcore import CoreConfig, EndReason, RecordKind, WatchdogConfig
from callcore.conversation import MAX_SEED_TURNS, Conversation
from callcore.protocol import realtime as rt
from callcore.protocol.twilio import Media
from tests.callcore.harness import INTERRUPT_AT_ONCE, STREAM_SID, CoreRun, greeting_run, tone


def frame(audio: bytes) -> Media:
    return Media(base64.b64encode(audio).decode(), audio, 0, "inbound")


BOUND_S = 5.0


def conversation_run(**config: object) -> CoreRun:
    """A call with one exchange: the caller's words and the AI's answer, heard in full."""
    run = CoreRun(config=CoreConfig(stream_sid=STREAM_SID, turns=INTERRUPT_AT_ONCE, **config))  # type: ignore[arg-type]
    run.event(rt.SpeechStarted(0, "u1"), at=0.1)
    run.event(rt.SpeechStopped(900, "u1"), at=1.0)
    run.event(rt.InputTranscribed("u1", "What time do you open?"))
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.AudioDelta("r1", "a1", tone(0x44, 400)))
    run.event(rt.TranscriptDone("r1", "a1", "We open at nine."))
    run.event(rt.AudioDone("r1", "a1"))
    run.event(rt.ResponseDone("r1", "completed", ()))
    run.step(2.0)
    return run


def seeded(run: CoreRun) -> list[tuple[str, str]]:
    return [
        (event["item"]["role"], event["item"]["content"][0]["text"])
        for event in run.model_events("conversation.item.create")
    ]


def test_an_answer_that_does_not_start_within_the_bound_replaces_the_session() -> None:
    run = conversation_run()
    run.event(rt.SpeechStarted(2500, "u2"), at=2.5)
    run.event(rt.SpeechStopped(3000, "u2"), at=3.0)  # server VAD owes an answer now
    run.event(rt.InputTranscribed("u2", "And on Sundays?"))

    run.step(3.0 + BOUND_S - 0.01)
    assert run.replacements == []
    run.step(3.0 + BOUND_S)
    assert run.replacements == [(3.0 + BOUND_S, 1)]
    (fault,) = run.of_kind(RecordKind.MODEL_FAULT)
    assert fault.details == {"what": "no_response", "attempt": 1, "answer_owed": True}
    # The new session hears the conversation so far, in order, then is asked to answer.
    assert seeded(run) == [
        ("user", "What time do you open?"),
        ("assistant", "We open at nine."),
        ("user", "And on Sundays?"),
    ]
    assert run.model[-1] == {"type": "response.create"}

    run.core.model_replaced(run.now, 120.0)
    run.settle()
    (recovered,) = run.of_kind(RecordKind.MODEL_RECOVERED)
    assert recovered.details == {
        "attempt": 1,
        "connect_ms": 120,
        "turns": 3,
        "answer_requested": True,
    }
    # The new session answers: the call goes on.
    run.answer("r2", "a2", 500)
    run.step(run.now + 1.0)
    assert run.ended is None
    assert len(run.of_kind(RecordKind.MODEL_FAULT)) == 1


def test_an_answer_that_stalls_is_a_fault_its_audio_still_plays() -> None:
    run = CoreRun()
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.AudioDelta("r1", "a1", tone(0x44, 600)))
    run.event(rt.TranscriptDelta("r1", "a1", "Let me check"), at=0.5)
    run.step(0.5 + BOUND_S - 0.01)
    assert run.replacements == []
    run.step(0.5 + BOUND_S)
    assert run.replacements == [(0.5 + BOUND_S, 1)]
    assert run.of_kind(RecordKind.MODEL_FAULT)[0].details["what"] == "stalled"
    assert run.heard_ms() == pytest.approx(600)
    # What the caller heard of the stalled answer is part of the conversation.
    assert seeded(run) == [("assistant", "Let me check")]


def test_a_quiet_model_is_no_fault_while_nothing_is_owed() -> None:
    run = conversation_run()
    run.step(60.0)  # the caller thinks; nobody owes anybody an answer
    assert run.replacements == []
    run.event(rt.SpeechStarted(60_000, "u2"), at=60.0)
    run.step(90.0)  # a long monologue: still nothing owed until it stops
    assert run.replacements == []


def test_the_caller_speaking_again_disarms_a_due_answer_not_yet_asked() -> None:
    run = conversation_run()
    run.event(rt.SpeechStarted(2000, "u1"), at=2.0)
    run.event(rt.SpeechStarted(3500, "u2"), at=3.5)  # they carry on talking
    run.step(3.0 + BOUND_S + 1)
    assert run.replacements == []


def test_an_answer_asked_for_is_awaited_though_the_caller_speaks_again() -> None:
    run = conversation_run()
    run.event(rt.SpeechStopped(3000, "u1"), at=3.0)  # their turn ends: the bridge asks
    assert run.model_events("response.create")
    run.event(rt.SpeechStarted(3500, "u2"), at=3.5)  # they carry on talking
    run.step(3.0 + BOUND_S + 1)
    assert [attempt for _, attempt in run.replacements] == [1]  # the model never answered


def test_a_greeting_that_never_starts_is_requested_again_from_a_new_session() -> None:
    run = greeting_run()
    run.step(BOUND_S)
    assert run.replacements == [(BOUND_S, 1)]
    creates = run.model_events("response.create")
    # Nothing was said yet: the new session is asked for the greeting itself.
    assert creates[-1] == {
        "type": "response.create",
        "response": {"instructions": "Greet the caller."},
    }


def test_when_replacements_keep_failing_the_call_ends_model_unresponsive() -> None:
    run = conversation_run(max_model_recoveries=2)
    run.core.model_closed(False, 2.0)
    run.settle()
    run.core.model_replace_failed("timed out", 7.0)
    run.settle()
    assert [attempt for _, attempt in run.replacements] == [1, 2]
    assert run.ended is None
    run.core.model_replace_failed("ConnectionRefusedError", 12.0)
    run.settle()
    assert run.ended is EndReason.MODEL_UNRESPONSIVE
    faults = [r.details["what"] for r in run.of_kind(RecordKind.MODEL_FAULT)]
    assert faults == ["connection_closed", "replacement_failed", "replacement_failed"]
    assert run.updates[-1].fields["end_reason"] == "model_unresponsive"


def test_a_recovered_session_that_goes_quiet_again_counts_against_the_same_budget() -> None:
    config = {"watchdog": WatchdogConfig(response_start_ms=1000, response_stall_ms=1000)}
    run = conversation_run(max_model_recoveries=1, **config)
    run.event(rt.SpeechStopped(3000, "u1"), at=3.0)
    run.step(4.0)
    run.core.model_replaced(4.1)
    run.settle()
    run.step(5.1)  # the new session does not answer either
    assert run.ended is EndReason.MODEL_UNRESPONSIVE


def test_no_deadline_runs_while_a_replacement_is_being_opened() -> None:
    run = conversation_run()
    run.core.model_closed(False, 2.0)
    run.settle()
    run.step(30.0)
    assert run.replacements == [(2.0, 1)]
    assert run.ended is None


def test_a_model_lost_during_the_goodbye_is_not_replaced() -> None:
    run = CoreRun()
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.AudioDelta("r1", "a1", tone(0x44, 500)))
    run.event(rt.FunctionCallDone("r1", "call_1", rt.END_CALL_TOOL))
    run.event(rt.ResponseDone("r1", "completed", ("call_1",)))
    run.core.model_closed(False, 0.1)
    run.settle()
    run.step(3.0)
    assert run.replacements == []
    assert run.ended is EndReason.AGENT_HANGUP


def test_a_session_being_replaced_is_heard_no_more_not_even_its_end_call() -> None:
    """Events of the old session that slip past the shell after its fault (its reader
    delivered them while the drain was busy) change nothing: the replacement takes over."""
    run = conversation_run()
    run.event(rt.ResponseCreated("r2"))
    run.event(rt.AudioDelta("r2", "a2", tone(0x55, 200)))
    run.step(2.0 + BOUND_S + 0.5)  # the answer stalled: a replacement opens
    assert [attempt for _, attempt in run.replacements] == [1]

    run.event(rt.AudioDelta("r2", "a2", tone(0x55, 400)))
    run.event(rt.FunctionCallDone("r2", "call_1", rt.END_CALL_TOOL))
    run.event(rt.ResponseDone("r2", "completed", ("call_1",)))
    run.core.model_replaced(run.now, 50.0)
    run.settle()
    run.step(run.now + 3.0)

    assert run.ended is None
    assert run.of_kind(RecordKind.END_CALL_REQUESTED) == []
    assert run.core.tracker.response_audio_ms("r2") == 200  # the late delta was not played


def test_the_caller_cutting_the_last_words_of_a_lost_model_ends_the_call() -> None:
    """The model's socket closed during its goodbye: nothing more can be said, so a caller
    who speaks over what is left stops it, and the call ends (no session to go on with)."""
    run = CoreRun()
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.AudioDelta("r1", "a1", tone(0x44, 2000)))
    run.event(rt.FunctionCallDone("r1", "call_1", rt.END_CALL_TOOL))
    run.core.model_closed(False, 0.1)  # still generating: its last words play out
    run.settle()
    run.caller_speaks(0.5)  # a speech event read off the socket before it closed
    run.step(3.0)

    assert run.clears == [0.5]
    assert run.of_kind(RecordKind.HANGUP_CANCELLED) == []
    assert run.replacements == []
    assert run.ended is EndReason.MODEL_DISCONNECTED
    assert run.heard_ms() == pytest.approx(500)


def test_a_barge_in_keeps_only_the_words_heard_of_the_cut_answer() -> None:
    run = CoreRun()
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.TranscriptDelta("r1", "a1", "We open at nine. "))
    run.event(rt.AudioDelta("r1", "a1", tone(0x44, 1000)))
    run.event(rt.TranscriptDelta("r1", "a1", "On Sundays at ten."))
    run.event(rt.AudioDelta("r1", "a1", tone(0x44, 1000)))
    run.caller_speaks(0.5)
    # The service's transcript of the whole answer comes later: it changes nothing.
    run.event(rt.TranscriptDone("r1", "a1", "We open at nine. On Sundays at ten."))
    turns = [r.details for r in run.of_kind(RecordKind.CONVERSATION_TURN)]
    assert turns == [{"seq": 1, "role": "assistant", "item_id": "a1", "text": "We open at nine."}]


def test_the_seed_is_the_latest_turns_in_the_order_they_began() -> None:
    conversation = Conversation()
    conversation.begin("u1", "user")
    conversation.begin("a1", "assistant")
    conversation.words("a1", "assistant", "Hello.")
    conversation.words("u1", "user", "Hi")  # its transcription came after the answer began
    assert [t.item_id for t in conversation.seed()] == ["u1", "a1"]
    for n in range(MAX_SEED_TURNS + 5):
        conversation.words(f"x{n}", "user", f"turn {n}")
    seed = conversation.seed()
    assert len(seed) == MAX_SEED_TURNS
    assert seed[-1].text == f"turn {MAX_SEED_TURNS + 4}"


def test_a_model_that_answers_nothing_not_even_a_probe_is_replaced() -> None:
    run = conversation_run()  # the model's last event at 1.0
    run.answer_probes = False
    run.step(1.0 + 5.0)
    assert run.probes == [6.0]
    run.step(6.0 + BOUND_S - 0.01)
    assert run.replacements == []
    run.step(6.0 + BOUND_S)
    assert run.replacements == [(11.0, 1)]
    assert run.of_kind(RecordKind.MODEL_FAULT)[0].details["what"] == "unresponsive"
    # Nothing was known to be owed: the new session is not asked to answer by us.
    assert run.model[-1]["type"] != "response.create"


def test_what_the_caller_said_to_a_silent_model_is_replayed_to_the_next() -> None:
    run = conversation_run()
    run.answer_probes = False
    run.step(3.0)
    speech = [bytes([n]) * 160 for n in range(100)]  # 2 s of the caller, unheard
    for n, audio in enumerate(speech):
        run.core.caller_audio(frame(audio), 3.0 + n * 0.02)
        run.settle()
    run.step(11.0)
    assert run.replacements == [(11.0, 1)]
    after = run.model[run.model.index(run.model_events("conversation.item.create")[-1]) + 1 :]
    replayed = b"".join(
        base64.b64decode(e["audio"]) for e in after if e["type"] == "input_audio_buffer.append"
    )
    assert replayed == b"".join(speech)
    # The new session's input begins with it: its 500 ms is the frame that came at 3.5.
    assert run.core.uplink.clock.arrival_of(500) == pytest.approx(3.5, abs=0.021)


# --- a deploy: handed over at a pause ------------------------------------------------------


def test_a_handover_waits_for_the_answer_to_finish_playing() -> None:
    run = CoreRun()
    run.answer("r1", "a1", 2000)
    run.core.hand_over(0.5, 5.0)
    run.settle()
    run.step(1.9)
    assert run.ended is None  # the caller is still hearing the answer
    run.step(3.0)
    assert run.ended is EndReason.SERVER_SHUTDOWN
    assert run.heard_ms() == pytest.approx(2000)


def test_a_handover_at_a_pause_is_at_once() -> None:
    run = conversation_run()
    run.core.hand_over(2.0, 5.0)
    run.settle()
    assert run.ended is EndReason.SERVER_SHUTDOWN


def test_a_handover_waits_for_the_caller_to_finish_then_for_the_answer() -> None:
    run = conversation_run()
    run.event(rt.SpeechStarted(2000, "u2"), at=2.0)
    run.core.hand_over(2.1, 5.0)
    run.settle()
    run.step(2.9)
    assert run.ended is None  # the caller is speaking
    run.event(rt.SpeechStopped(3000, "u2"), at=3.0)
    assert run.ended is None  # an answer is owed now
    run.event(rt.ResponseCreated("r2"))
    run.event(rt.AudioDelta("r2", "a2", tone(0x44, 500)))
    run.event(rt.AudioDone("r2", "a2"))
    run.event(rt.ResponseDone("r2", "completed", ()))
    run.step(3.4)
    assert run.ended is None
    run.step(3.7)
    assert run.ended is EndReason.SERVER_SHUTDOWN


def test_a_handover_happens_by_the_end_of_the_grace_period_whatever_is_going_on() -> None:
    run = CoreRun()
    run.answer("r1", "a1", 20_000)
    run.core.hand_over(1.0, 5.0)
    run.settle()
    run.step(5.9)
    assert run.ended is None
    run.step(6.0)
    assert run.ended is EndReason.SERVER_SHUTDOWN


def test_a_question_the_model_detected_but_never_answered_is_replayed_and_committed() -> None:
    run = conversation_run()
    question = [bytes([n]) * 160 for n in range(50)]  # 1 s of the caller asking
    run.event(rt.SpeechStarted(2000, "u2"), at=2.0)
    for n, audio in enumerate(question):
        run.core.caller_audio(frame(audio), 2.0 + n * 0.02)
        run.settle()
    run.event(rt.SpeechStopped(3000, "u2"), at=3.0)  # then nothing: no answer, no words
    run.step(8.0)
    assert run.replacements == [(8.0, 1)]
    last_seed = run.model.index(run.model_events("conversation.item.create")[-1])
    after = run.model[last_seed + 1 :]
    replayed = b"".join(
        base64.b64decode(e["audio"]) for e in after if e["type"] == "input_audio_buffer.append"
    )
    assert replayed.startswith(b"".join(question))  # the question, not only what followed
    assert [e["type"] for e in after[-2:]] == ["input_audio_buffer.commit", "response.create"]


def test_a_session_that_answers_again_earns_back_its_recovery_budget() -> None:
    run = conversation_run(max_model_recoveries=1)
    run.core.model_closed(False, 2.0)
    run.settle()
    run.core.model_replaced(2.1)
    run.settle()
    run.answer("r9", "a9", 300)  # the new session works
    run.core.model_closed(False, 4.0)  # an unrelated close, much later
    run.settle()
    assert run.ended is None
    assert [attempt for _, attempt in run.replacements] == [1, 1]
