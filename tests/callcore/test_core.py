"""Every decision of a call, on the core with a stepped clock: no sockets, no sleeps."""

from __future__ import annotations

import base64

import pytest

from callcore import BargeIn, CoreConfig, EndReason, RecordKind, ToTwilio
from callcore.protocol import realtime as rt
from callcore.protocol.twilio import Media
from tests.callcore.harness import (
    INTERRUPT_AT_ONCE,
    STREAM_SID,
    VOICE,
    CoreRun,
    Sent,
    greeting_run,
    tone,
)


def test_the_greeting_is_requested_once_the_model_session_is_open() -> None:
    run = greeting_run()
    assert run.model_events("response.create") == [
        {"type": "response.create", "response": {"instructions": "Greet the caller."}}
    ]
    assert run.kinds()[:2] == [RecordKind.STREAM_STARTED, RecordKind.MODEL_SESSION_OPENED]


def test_no_greeting_without_instructions() -> None:
    run = CoreRun()
    assert run.model_events("response.create") == []


def frame(audio: bytes) -> Media:
    return Media(base64.b64encode(audio).decode(), audio, 0, "inbound")


def test_caller_audio_goes_to_the_model_in_order_two_frames_an_append() -> None:
    run = CoreRun()  # uplink_chunk_ms 40: two of Twilio's 20 ms frames
    frames = [bytes([n]) * 160 for n in range(5)]
    for audio in frames:
        run.core.caller_audio(frame(audio), 0.0)
    run.settle()
    appends = [base64.b64decode(e["audio"]) for e in run.model_events("input_audio_buffer.append")]
    assert appends == [frames[0] + frames[1], frames[2] + frames[3]]  # the fifth waits


def test_with_a_chunk_of_one_frame_each_frame_goes_as_it_came() -> None:
    run = CoreRun(
        config=CoreConfig(stream_sid=STREAM_SID, uplink_chunk_ms=20, turns=INTERRUPT_AT_ONCE)
    )
    sent = frame(bytes(range(160)))
    run.core.caller_audio(sent, 0.0)
    run.settle()
    # The payload goes exactly as Twilio sent it, not decoded and encoded again.
    assert run.model == [{"type": "input_audio_buffer.append", "audio": sent.payload_b64}]


def test_held_caller_audio_goes_before_the_next_client_event() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 1000)
    run.core.caller_audio(frame(b"\xfe" * 160), 0.1)  # held for the next append
    run.caller_speaks(0.2)
    kinds = [event["type"] for event in run.model]
    assert kinds[-2:] == ["input_audio_buffer.append", "conversation.item.truncate"]


def test_an_answer_is_paced_marked_and_heard_in_full() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 1000)
    run.step(2.0)
    assert run.heard_ms() == pytest.approx(1000)
    assert run.twilio[0].message["event"] == "media"
    assert run.twilio[-1].message["event"] == "mark"
    assert not run.core.tracker.is_speaking(2.0)
    [started] = run.of_kind(RecordKind.PLAYOUT_STARTED)
    [ended] = run.of_kind(RecordKind.PLAYOUT_ENDED)
    assert started.details == {"response_id": "r1", "item_id": "i1"}
    assert ended.details["audio_end_offset_ms"] == 1000
    assert ended.details["interrupted"] is False
    [stats] = run.of_kind(RecordKind.MARK_STATS)
    assert stats.details["count"] >= 10


# --- barge-in -----------------------------------------------------------------------------


def test_barge_in_in_the_playout_tail() -> None:
    """The original bug: the model has finished, 4 s still play, the caller speaks."""
    run = CoreRun()
    run.answer("r1", "i1", 6000)  # all of it received and done at t=0
    run.caller_speaks(2.0)

    assert run.clears == [2.0]
    assert run.model_events("response.cancel") == []  # nothing is generating any more
    [truncate] = run.model_events("conversation.item.truncate")
    assert truncate["item_id"] == "i1"
    assert truncate["audio_end_ms"] == pytest.approx(run.heard_ms(), abs=1)
    assert truncate["audio_end_ms"] == 2000
    [barge_in] = run.barge_ins
    assert barge_in.figures.playout_remaining_ms == 4000
    assert barge_in.figures.response_cancelled is False
    assert barge_in.figures.reaction_ms == 0
    [row] = run.of_kind(RecordKind.BARGE_IN)
    assert row.playout_status == "playout_active_4000ms"
    [ended] = run.of_kind(RecordKind.PLAYOUT_ENDED)
    assert ended.details["interrupted"] is True
    assert any(line.startswith("[EARLY_BARGE_IN] Triggered") for line in run.logs)


def test_barge_in_while_generating_cancels_the_response() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 1000, done=False)
    run.caller_speaks(0.5)

    assert run.model_events("response.cancel") == [{"type": "response.cancel"}]
    [truncate] = run.model_events("conversation.item.truncate")
    assert truncate["audio_end_ms"] == 500
    assert run.barge_ins[0].figures.response_cancelled is True


def test_the_clear_goes_first_and_queued_audio_of_the_cancelled_answer_never_leaves() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 2000)
    run.step(1.0)
    # The refill due at 1.1 s is handed over but not yet sent (the shell is busy)
    # when the caller's voice arrives: the clear overtakes it, and it is dropped.
    run.core.timer(1.1)
    run.core.model_event(rt.SpeechStarted(None, "u1"), 1.12)
    run.core.caller_audio(VOICE, 1.12)

    outputs = []
    while (out := run.core.pop_output()) is not None:
        outputs.append(out)
    assert isinstance(outputs[0], BargeIn)
    assert not any(isinstance(out, ToTwilio) for out in outputs)


def test_reaction_is_from_the_deciding_frame_to_the_clear_sent() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 2000)
    run.step(1.0)
    run.core.model_event(rt.SpeechStarted(None, "u1"), 1.0)
    run.core.caller_audio(VOICE, 1.0)
    out = run.core.pop_output()
    assert isinstance(out, BargeIn)
    assert out.figures.reaction_ms == 0  # not sent yet
    assert out.reacted(1.0004).figures.reaction_ms == pytest.approx(0.4)


def test_speech_after_playout_is_not_a_barge_in() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 500)
    run.caller_speaks(2.0)

    assert run.clears == []
    assert run.model_events("conversation.item.truncate") == []
    [silent] = run.of_kind(RecordKind.USER_SPEECH_AI_SILENT)
    assert silent.playout_status == "playout_ended_1500ms_ago"
    assert silent.details["ms_since_playout_end"] == 1500
    assert "[USER_SPEECH] AI silent - playout_status=playout_ended_1500ms_ago tx_q=0" in run.logs


def test_speech_that_began_before_the_end_is_judged_by_its_real_onset() -> None:
    """The VAD reports speech late; the onset (input clock) says where it began."""
    run = CoreRun()
    run.answer("r1", "i1", 500)
    run.caller_audio(1000)  # 50 frames, one every 20 ms: input 0..1000 ms arrives 0..1 s
    # Reported at 1.0 s (already after the end at 0.5 s + grace), but the speech
    # began at input 400 ms (audio_start_ms includes the 300 ms prefix padding),
    # whose audio was captured from 0.38 s: 120 ms before the AI stopped.
    run.event(rt.SpeechStarted(100, "u1"))
    [silent] = run.of_kind(RecordKind.USER_SPEECH_AI_SILENT)
    assert silent.details["onset_ms_after_playout_end"] == -120


def test_late_deltas_and_echoes_of_a_cancelled_answer_change_nothing() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 1000, done=False)
    run.caller_speaks(0.3)
    sent_before = len(run.twilio_events("media"))

    run.event(rt.AudioDelta("r1", "i1", tone(0x44, 500)))  # late, after the cancel
    run.event(rt.ResponseDone("r1", "cancelled", ()))
    run.step(2.0)

    assert len(run.twilio_events("media")) == sent_before
    assert not run.core.tracker.is_speaking(2.0)
    assert run.model_events("conversation.item.truncate")[0]["audio_end_ms"] == 300


def test_a_second_answer_after_a_barge_in_plays_in_full() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 1000)
    run.caller_speaks(0.4)
    run.step(1.0)
    heard_before = run.heard_ms()
    run.answer("r2", "i2", 600)
    run.step(3.0)
    assert run.heard_ms() - heard_before == pytest.approx(600)


# --- the goodbye ----------------------------------------------------------------------------


def say_goodbye(run: CoreRun, ms: int, *, done: bool = True) -> None:
    run.event(rt.ResponseCreated("bye"))
    run.event(rt.AudioDelta("bye", "i_bye", tone(0x66, ms)))
    run.event(rt.AudioDone("bye", "i_bye"))
    run.event(rt.FunctionCallDone("bye", "call_1", rt.END_CALL_TOOL))
    if done:
        run.event(rt.ResponseDone("bye", "completed", ("call_1",)))


def test_goodbye_drains_until_its_final_mark_is_echoed_then_ends() -> None:
    run = CoreRun()
    say_goodbye(run, 800)
    assert run.ended is None
    run.step(0.79)
    assert run.ended is None  # still playing
    run.step(1.0)

    assert run.ended is EndReason.AGENT_HANGUP
    [drain] = run.of_kind(RecordKind.DRAIN_COMPLETED)
    assert drain.details["final_mark_echoed"] is True
    assert drain.details["cut_off_ms"] == 0
    assert drain.at == pytest.approx(0.8)  # the moment the last audio was heard
    assert run.heard_ms() == pytest.approx(800)
    [update] = run.updates[-1:]
    assert update.fields["end_reason"] == "agent_hangup"
    assert update.ended_at == pytest.approx(0.8)


def test_goodbye_waits_for_a_response_still_generating() -> None:
    run = CoreRun()
    say_goodbye(run, 400, done=False)
    run.step(2.0)
    assert run.ended is None  # end_call seen, but the response is not done
    run.event(rt.ResponseDone("bye", "completed", ("call_1",)))
    run.step(2.1)
    assert run.ended is EndReason.AGENT_HANGUP


class LosingEchoes(CoreRun):
    """Twilio never echoes marks: the drain ends on its safety deadline."""

    def _to_twilio(self, text: str, generation: int | None = None) -> None:
        if '"event":"mark"' in text:
            return
        super()._to_twilio(text, generation)


def test_goodbye_drain_ends_on_its_deadline_when_the_final_mark_never_comes() -> None:
    run = LosingEchoes()
    say_goodbye(run, 500)
    run.step(0.5)
    assert run.ended is None
    run.step(5.0)

    assert run.ended is EndReason.AGENT_HANGUP
    [drain] = run.of_kind(RecordKind.DRAIN_COMPLETED)
    assert drain.details["final_mark_echoed"] is False
    # Deadline (0.5 s), then the final echo's due time (the prior round trip, 100 ms,
    # + grace 40 + twice the prior jitter, 40), then the drain margin (400 ms).
    assert drain.at == pytest.approx(0.5 + 0.18 + 0.4, abs=0.001)


def test_a_goodbye_interrupted_by_the_caller_keeps_the_call() -> None:
    run = CoreRun()
    say_goodbye(run, 3000)
    run.caller_speaks(1.0)
    run.step(10.0)

    assert run.ended is None
    assert run.kinds().count(RecordKind.HANGUP_CANCELLED) == 1
    [output] = run.model_events("conversation.item.create")
    assert output["item"]["type"] == "function_call_output"
    assert output["item"]["call_id"] == "call_1"
    assert '"ended": false' in output["item"]["output"]


def test_a_goodbye_interrupted_before_its_response_is_done_never_hangs_up() -> None:
    run = CoreRun()
    say_goodbye(run, 3000, done=False)
    run.caller_speaks(0.5)
    run.event(rt.ResponseDone("bye", "cancelled", ("call_1",)))  # repeats the void end_call
    run.step(10.0)
    assert run.ended is None
    assert run.of_kind(RecordKind.DRAIN_STARTED) == []


def test_the_model_dropping_during_a_drain_still_lets_the_goodbye_finish() -> None:
    run = CoreRun()
    say_goodbye(run, 800)
    run.step(0.3)
    run.core.model_closed(False, 0.3)
    run.settle()
    run.step(2.0)
    assert run.ended is EndReason.AGENT_HANGUP
    assert run.heard_ms() == pytest.approx(800)
    assert [r.details["code"] for r in run.of_kind(RecordKind.MODEL_ERROR)] == ["connection_closed"]


def test_the_model_lost_mid_answer_plays_out_what_was_received_and_a_new_session_answers() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 700, done=False)
    run.step(0.2)
    run.core.model_closed(True, 0.2)
    run.settle()
    assert run.replacements == [(0.2, 1)]
    # The answer it was giving is owed: the new session is asked for one.
    assert run.model[-1] == {"type": "response.create"}
    run.step(2.0)
    assert run.ended is None
    assert run.heard_ms() == pytest.approx(700)


def test_an_unannounced_response_still_plays_out_when_the_model_is_lost() -> None:
    run = CoreRun()
    run.event(rt.AudioDelta("r9", "i9", tone(0x12, 300)))  # no response.created
    run.core.model_closed(False, 0.0)
    run.settle()
    run.step(2.0)
    assert run.heard_ms() == pytest.approx(300)
    assert run.replacements == [(0.0, 1)]


# --- the caller, and the end -----------------------------------------------------------------


def test_a_caller_gone_mid_answer_ends_the_call_with_everything_recorded() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 3000)
    run.step(1.0)
    run.core.end(EndReason.CALLER_DISCONNECTED, 1.0)
    run.settle()

    assert run.ended is EndReason.CALLER_DISCONNECTED
    assert run.kinds()[-1] == RecordKind.STREAM_ENDED
    update = run.updates[-1]
    assert update.fields == {
        "status": "completed",
        "end_reason": "caller_disconnected",
        "responses": 1,
        "ai_audio_ms": 1300,  # a second played, 300 ms of lead sent
        # One clean echo on this instant link; too few for a measured jitter.
        "link_rtt_p50_ms": 0,
        "link_rtt_p95_ms": 0,
        "link_jitter_ms": None,
        "link_samples": 1,
        "estimate_error_p95_ms": 0,
    }
    # Nothing happens after the end.
    run.event(rt.AudioDelta("r1", "i1", tone(0x44, 200)))
    run.core.end(EndReason.CALLER_HANGUP, 1.1)
    run.settle()
    assert run.ended is EndReason.CALLER_DISCONNECTED
    assert run.core.next_timer() is None


def test_every_playout_interval_is_closed_when_the_call_ends() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 3000)
    run.step(1.0)
    run.core.end(EndReason.CALLER_HANGUP, 1.0)
    run.settle()
    [ended] = run.of_kind(RecordKind.PLAYOUT_ENDED)
    assert ended.details["audio_end_offset_ms"] == 1000


def test_too_many_malformed_messages_end_the_call() -> None:
    run = CoreRun()
    for _ in range(49):
        run.core.protocol_error("not JSON", 0.0)
    run.settle()
    assert run.ended is None
    assert len(run.of_kind(RecordKind.PROTOCOL_ERROR)) == 5  # the first few, not every one
    run.core.protocol_error("not JSON", 0.0)
    run.settle()
    assert run.ended is EndReason.PROTOCOL_ERRORS


def test_dtmf_is_recorded() -> None:
    run = CoreRun()
    run.core.caller_dtmf("7", 0.5)
    run.settle()
    [dtmf] = run.of_kind(RecordKind.DTMF)
    assert dtmf.details == {"digit": "7"}


def test_the_model_session_id_is_kept_on_the_call() -> None:
    run = CoreRun()
    run.event(rt.SessionCreated("sess_abc"))
    assert run.updates[-1].fields == {"model_session_id": "sess_abc"}


def test_model_errors_are_recorded_and_the_call_goes_on() -> None:
    run = CoreRun()
    run.event(rt.ServerError("bad_thing", "x", "", ""))
    run.answer("r1", "i1", 200)
    run.step(1.0)
    [error] = run.of_kind(RecordKind.MODEL_ERROR)
    assert error.details == {"code": "bad_thing", "message": "x"}
    assert run.heard_ms() == pytest.approx(200)


def test_a_model_that_cannot_be_reached_ends_the_call() -> None:
    run = CoreRun()
    run.core.model_open_failed("ConnectionRefusedError", 0.1)
    run.settle()
    assert run.ended is EndReason.MODEL_CONNECT_FAILED
    [error] = run.of_kind(RecordKind.MODEL_ERROR)
    assert error.details["code"] == "connect_failed"


def test_an_idle_call_wakes_only_to_probe_the_model() -> None:
    run = CoreRun(config=CoreConfig(stream_sid=STREAM_SID, turns=INTERRUPT_AT_ONCE))
    assert run.core.next_timer() == 5.0  # the probe, 5 s after the model's last sign of life
    run.answer("r1", "i1", 200)
    run.step(4.0)
    assert run.core.next_timer() == pytest.approx(5.0)
    run.step(5.0)
    assert run.probes == [5.0]  # answered at once: the next is 5 s later
    assert run.core.next_timer() == pytest.approx(10.0)


# --- the link, the words, a refused truncate -------------------------------------------------


# The refusals as the service sends them (real reports): `param` and the client's
# `event_id` null, whatever event id the truncate carried.
PAST_END = "Audio content of {}ms is already shorter than {}ms"
BEFORE_AUDIO = "Only model output audio messages can be truncated"


def refusal(code: str, message: str) -> rt.ServerError:
    return rt.ServerError(code, message, "", "")


def test_a_refused_truncate_is_retried_once_shorter_then_the_item_deleted() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 3000)
    run.caller_speaks(1.0)
    [first] = run.model_events("conversation.item.truncate")
    run.event(refusal("invalid_value", PAST_END.format(900, first["audio_end_ms"])))
    [_, retry] = run.model_events("conversation.item.truncate")
    assert (retry["item_id"], retry["audio_end_ms"]) == ("i1", 900)

    run.event(refusal("invalid_value", PAST_END.format(850, 900)))
    assert run.model_events("conversation.item.delete") == [
        {"type": "conversation.item.delete", "item_id": "i1"}
    ]
    actions = [r.details["action"] for r in run.of_kind(RecordKind.TRUNCATE_REJECTED)]
    assert actions == ["retried", "deleted"]
    # The conversation goes on: the next answer is played in full.
    run.answer("r2", "i2", 500)
    before = run.heard_ms()
    run.step(5.0)
    assert run.heard_ms() - before == pytest.approx(500)
    assert run.ended is None


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("unsupported_content_type", BEFORE_AUDIO),
        (
            "integer_below_min_value",
            "Invalid 'audio_end_ms': integer below minimum value. Expected a value >= 0, "
            "but got {} instead.",
        ),
    ],
)
def test_a_truncate_refused_without_a_length_deletes_the_item_at_once(
    code: str, message: str
) -> None:
    run = CoreRun()
    run.answer("r1", "i1", 3000)
    run.caller_speaks(1.0)
    [truncate] = run.model_events("conversation.item.truncate")
    run.event(refusal(code, message.format(truncate["audio_end_ms"])))
    assert len(run.model_events("conversation.item.truncate")) == 1
    assert run.model_events("conversation.item.delete") == [
        {"type": "conversation.item.delete", "item_id": "i1"}
    ]
    [rejected] = run.of_kind(RecordKind.TRUNCATE_REJECTED)
    assert (rejected.details["action"], rejected.details["code"]) == ("deleted", code)
    assert rejected.details["retry_audio_end_ms"] is None
    # One log line says what became of the refusal, not a second about an error.
    refusal_lines = [line for line in run.logs if "truncate" in line or "error" in line]
    assert refusal_lines == [
        f"truncate of i1 at {truncate['audio_end_ms']} ms rejected ({code}); deleted"
    ]
    assert run.ended is None


def test_a_refusal_answers_the_truncate_it_names_not_an_older_one_still_waiting() -> None:
    """The first truncate's answer was an error not recognised as a refusal (a server
    error): the second's refusal, naming its length, is about the second, not the first,
    which the caller heard and must stay in the model's memory."""
    run = CoreRun()
    run.answer("r1", "i1", 3000)
    run.caller_speaks(1.0)
    run.event(refusal("server_error", "The server had an error while processing your request."))
    run.answer("r2", "i2", 3000)
    run.caller_speaks(2.5)
    [first, second] = run.model_events("conversation.item.truncate")
    run.event(refusal("invalid_value", PAST_END.format(1450, second["audio_end_ms"])))

    [retry] = run.model_events("conversation.item.truncate")[2:]
    assert (retry["item_id"], retry["audio_end_ms"]) == ("i2", 1450)
    assert run.model_events("conversation.item.delete") == []
    # A refusal of the retry is the retry's, though the first one never had an answer.
    run.event(refusal("unsupported_content_type", BEFORE_AUDIO))
    deleted = [event["item_id"] for event in run.model_events("conversation.item.delete")]
    assert deleted == ["i2"]
    assert first["item_id"] == "i1"


def test_an_accepted_truncate_needs_no_retry() -> None:
    run = CoreRun()
    run.answer("r1", "i1", 3000)
    run.caller_speaks(1.0)
    [first] = run.model_events("conversation.item.truncate")
    run.event(rt.ItemTruncated("i1", first["audio_end_ms"]))
    # An error about something else altogether is not about the truncate.
    run.event(refusal("invalid_value", PAST_END.format(900, 1000)))
    assert len(run.model_events("conversation.item.truncate")) == 1
    assert run.of_kind(RecordKind.TRUNCATE_REJECTED) == []


def test_the_words_heard_and_cut_are_recorded_with_the_barge_in() -> None:
    run = CoreRun()
    run.event(rt.ResponseCreated("r1"))
    for words, ms in [("The shop ", 500), ("opens at nine ", 500), ("and closes at six.", 1000)]:
        run.event(rt.TranscriptDelta("r1", "i1", words))
        run.event(rt.AudioDelta("r1", "i1", tone(0x44, ms)))
    run.caller_speaks(0.8)  # into "opens at nine"

    [barge_in] = run.barge_ins
    assert barge_in.figures.heard_text == "The shop opens at nine"
    assert barge_in.figures.cut_text == "and closes at six."


def test_the_link_each_call_measured_is_kept_on_the_call() -> None:
    run = CoreRun(link_delay_s=0.06)
    run.answer("r1", "i1", 1000)
    run.step(2.0)
    run.core.end(EndReason.CALLER_HANGUP, 2.0)
    run.settle()
    fields = run.updates[-1].fields
    assert fields["link_samples"] == 1
    assert fields["link_rtt_p50_ms"] == 120
    assert fields["estimate_error_p95_ms"] is not None


def test_a_barge_in_over_a_slow_link_truncates_to_what_the_caller_heard() -> None:
    run = CoreRun(link_delay_s=0.15)
    run.answer("r1", "i1", 6000)
    run.caller_speaks(2.0)
    [truncate] = run.model_events("conversation.item.truncate")
    # The clear lands at 2.15; the caller had heard since 0.15: 2000 ms.
    assert truncate["audio_end_ms"] == pytest.approx(2000, abs=2)


# --- several audio items in one answer (newer models) ---------------------------------------


def two_item_answer(run: CoreRun, second_audio: bool) -> None:
    """Answer r1: item a (1000 ms, its words), then item b being generated: with audio
    arriving (`second_audio`), or announced but with none yet."""
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.TranscriptDelta("r1", "a", "We open at nine."))
    run.event(rt.AudioDelta("r1", "a", tone(0x44, 1000)))
    if second_audio:
        run.event(rt.TranscriptDelta("r1", "b", "On Sundays"))
        run.event(rt.AudioDelta("r1", "b", tone(0x45, 500)))
        run.event(rt.TranscriptDelta("r1", "b", " at ten."))
        run.event(rt.AudioDelta("r1", "b", tone(0x45, 500)))
    run.event(rt.AudioDone("r1", "a"))


def test_a_barge_in_in_the_second_item_cuts_it_and_keeps_the_first_whole() -> None:
    run = CoreRun()
    two_item_answer(run, second_audio=True)
    run.caller_speaks(1.5)

    [truncate] = run.model_events("conversation.item.truncate")
    assert (truncate["item_id"], truncate["audio_end_ms"]) == ("b", 500)
    assert run.model_events("conversation.item.delete") == []
    [barge_in] = run.barge_ins
    assert [(i.item_id, i.outcome, i.heard_ms) for i in barge_in.items] == [
        ("a", "kept", 1000),
        ("b", "truncated", 500),
    ]
    assert barge_in.figures.heard_text == "We open at nine. On Sundays"
    assert barge_in.figures.cut_text == "at ten."


def test_a_barge_in_in_the_first_item_deletes_the_second_whether_or_not_its_audio_came() -> None:
    for second_audio in (True, False):
        run = CoreRun()
        two_item_answer(run, second_audio=second_audio)
        run.caller_speaks(0.5)
        [truncate] = run.model_events("conversation.item.truncate")
        assert (truncate["item_id"], truncate["audio_end_ms"]) == ("a", 500)
        # b's audio (or the rest of it) comes after the cut, and its words: never played.
        run.event(rt.AudioDelta("r1", "b", tone(0x45, 600)))
        run.event(rt.TranscriptDone("r1", "b", "On Sundays at ten."))
        run.event(rt.ResponseDone("r1", "cancelled", (), ("a", "b"), "client_cancelled"))
        run.step(3.0)

        deleted = [event["item_id"] for event in run.model_events("conversation.item.delete")]
        assert deleted == ["b"], second_audio
        assert 0x45 not in {b for sent in run.twilio_events("media") for b in _payload(sent)}
        words = [r.details["item_id"] for r in run.of_kind(RecordKind.CONVERSATION_TURN)]
        assert "b" not in words  # never heard, never part of the conversation


def test_audio_of_an_item_after_the_next_one_began_is_not_played_and_is_forgotten() -> None:
    """A, B, then more A: the caller hears A then B, never A's tail after B's words,
    and the model's memory of A ends where the caller's hearing of it did."""
    run = CoreRun()
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.AudioDelta("r1", "a", tone(0x44, 600)))
    run.event(rt.AudioDelta("r1", "b", tone(0x45, 400)))
    run.event(rt.AudioDelta("r1", "a", tone(0x46, 300)))
    run.event(rt.AudioDone("r1", "a"))
    run.event(rt.AudioDone("r1", "b"))
    assert run.model_events("conversation.item.truncate") == []
    run.event(rt.ResponseDone("r1", "completed", (), ("a", "b")))
    run.step(3.0)

    played = [b for sent in run.twilio_events("media") for b in _payload(sent)]
    assert 0x46 not in played
    assert played.index(0x45) == 600 * 8  # b straight after the whole of a's first part
    [truncate] = run.model_events("conversation.item.truncate")
    assert (truncate["item_id"], truncate["audio_end_ms"]) == ("a", 600)
    assert run.barge_ins == []


def _payload(sent: Sent) -> bytes:
    return base64.b64decode(sent.message["media"]["payload"])
