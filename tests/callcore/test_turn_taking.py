"""The core with the bridge owning the turn: what each verdict does to the call (stepped clock).

The harness's caller speaks real voice frames (the meter tells them from the
AI's tone); the service's speech events and transcript follow as the
service sends them.
"""

from __future__ import annotations

import dataclasses

import pytest

from callcore import CoreConfig, RecordKind
from callcore.protocol import realtime as rt
from callcore.protocol.twilio import Media
from callcore.tools import ToolResult
from callcore.turns import TurnPolicy
from playout import PlayoutConfig
from tests.callcore import harness
from tests.callcore.harness import STREAM_SID, CoreRun, tone

ANSWER_MS = 5000


# Twilio holds up to 800 ms of the answer: at the caller's onset it already has more than
# plays by the stop target, and the pause clears it.
LATE_HOLD = CoreConfig(stream_sid=STREAM_SID, playout=PlayoutConfig(lead_ms=800))


def turn_run(**config: object) -> CoreRun:
    run = CoreRun(config=CoreConfig(stream_sid=STREAM_SID, **config))  # type: ignore[arg-type]
    return run


def phone_run() -> CoreRun:
    """Over a 60 ms link, Twilio kept 200 to 260 ms ahead (the defaults), 1.5 s into a
    5 s answer."""
    playout = PlayoutConfig(lead_ms=260, refill_ms=60)
    run = CoreRun(config=CoreConfig(stream_sid=STREAM_SID, playout=playout), link_delay_s=0.06)
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.5)
    return run


def verdicts(run: CoreRun) -> list[dict[str, object]]:
    return [record.details for record in run.of_kind(RecordKind.TURN_VERDICT)]


def creates(run: CoreRun) -> list[dict[str, object]]:
    return run.model_events("response.create")


def test_a_backchannel_pauses_and_resumes_the_answer_where_it_was_heard() -> None:
    run = turn_run()
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.5)
    run.caller_voice(400, "Mm-hmm.")
    run.step(7.0)

    [verdict] = verdicts(run)
    assert verdict["verdict"] == "backchannel"
    assert verdict["decided_by"] == "backchannel_words"
    assert verdict["paused"] is True
    [paused] = run.of_kind(RecordKind.ANSWER_PAUSED)
    [resumed] = run.of_kind(RecordKind.ANSWER_RESUMED)
    # Held at the stop target from the onset: the answer ran out then, nothing cleared.
    assert paused.details["cleared"] is False
    stopped = paused.at + paused.details["stop_in_ms"] / 1000
    assert resumed.details["gap_ms"] == pytest.approx((resumed.at - stopped) * 1000, abs=1)
    # Every millisecond of the answer was heard, once, the pause's gap aside.
    assert run.heard_ms() == pytest.approx(ANSWER_MS, abs=1)
    assert run.clears == []
    assert run.barge_ins == []
    assert creates(run) == []  # the "uh-huh" is not answered...
    deleted = [e["item_id"] for e in run.model_events("conversation.item.delete")]
    assert deleted == ["item_user"]  # ...and gone from the model's memory
    assert run.model_events("conversation.item.truncate") == []


def test_the_answer_is_held_whenever_twilio_has_no_more_than_plays_by_the_target() -> None:
    """Over a 60 ms link, Twilio kept 200 to 260 ms ahead: at the onset what it has ends
    before the hold's `until`, if only just, so the answer is held there and runs out by
    itself (no clear, whose landing the link's jitter would move); the "mm-hmm" ends at
    the target and the answer goes on from the first byte not sent."""
    run = phone_run()
    run.caller_voice(460, "Mm-hmm.")
    run.step(8.0)

    [verdict] = verdicts(run)
    assert verdict["verdict"] == "backchannel"
    [paused] = run.of_kind(RecordKind.ANSWER_PAUSED)
    assert paused.details["cleared"] is False
    assert run.clears == []
    assert run.heard_ms() == pytest.approx(ANSWER_MS, abs=1)


def test_a_pause_inside_the_callers_words_keeps_the_answer_held_with_nothing_to_clear() -> None:
    """A quiet frame 160 ms into "mm-hmm" ends the sound, and the answer goes on, but
    still held until Twilio must have more: the voice back a frame later is the same
    sound, the hold stands, and the answer runs out at its target by itself."""
    run = phone_run()
    run.caller_sound(160)
    run.caller_audio(20)
    run.caller_voice(280, "Mm-hmm.")
    run.step(8.0)

    [verdict] = verdicts(run)
    assert verdict["verdict"] == "backchannel"
    assert verdict["sounds"] == 2
    [paused] = run.of_kind(RecordKind.ANSWER_PAUSED)
    assert paused.details["cleared"] is False
    assert run.clears == []
    assert run.heard_ms() == pytest.approx(ANSWER_MS, abs=1)


def test_a_short_sound_held_answer_goes_on_in_time_to_be_heard_without_a_gap() -> None:
    """A 160 ms cough: the answer stays held until Twilio must have more, then goes on
    with nothing of it missed (the release comes before what Twilio has runs out)."""
    run = phone_run()
    run.caller_sound(160)
    run.caller_audio(40)
    assert run.core.tracker.held  # the sound is over, the hold not yet
    # The timer that lets it go on sends (the shell runs it where frames leave at once).
    while run.core.tracker.held:
        due = run.core.next_timer()
        assert due is not None
        sends = run.core.sends_due(due)
        run.step(due)
    assert sends
    run.step(8.0)

    assert not run.core.tracker.held
    assert run.clears == []
    assert run.heard_gaps_ms() == []
    assert run.heard_ms() == pytest.approx(ANSWER_MS, abs=1)


def test_a_sound_after_a_click_is_held_to_its_own_target() -> None:
    """A 60 ms click, then "yeah" 200 ms after it: the click's hold, still kept while
    the answer waits to go on, gives way to the new sound's own (a later target), so
    the "yeah", over before that, costs the caller no silence at all."""
    run = phone_run()
    run.caller_sound(60)
    run.caller_audio(140)
    run.caller_voice(200, "Yeah.")
    run.step(8.0)

    assert [v["verdict"] for v in verdicts(run)] == ["backchannel"]
    assert run.of_kind(RecordKind.ANSWER_PAUSED) == []
    assert run.clears == []
    assert run.heard_gaps_ms() == []
    assert run.heard_ms() == pytest.approx(ANSWER_MS, abs=1)


def test_a_click_as_the_answer_ends_holds_nothing_back_and_the_reply_is_a_turn() -> None:
    """All of the answer is at Twilio when a click comes: nothing is held back, so the
    answer goes on at once (not held till the hold's end), and the caller's reply after
    it is their turn, answered, with nothing cleared."""
    run = turn_run()
    run.answer("r1", "a1", 1000)
    run.step(0.9)
    run.caller_sound(60)
    run.caller_audio(20)
    assert not run.core.tracker.held
    run.step(1.3)
    run.caller_voice(600, "What time do you close?")
    run.step(3.0)

    assert run.clears == []
    assert run.barge_ins == []
    assert len(creates(run)) == 1


def test_a_sound_while_the_next_answer_is_made_stopped_nothing_the_caller_heard() -> None:
    """The first answer played out seconds ago; the model is making the next (none of it
    sent yet) when the caller interrupts: the answer is held for the sound and the pause
    finds nothing playing. The caller stopped hearing the AI at their onset, as far as
    the sound goes, not when the first answer ended."""
    run = turn_run()
    run.answer("r1", "a1", 1000)
    run.step(4.0)
    run.event(rt.ResponseCreated("r2"))
    run.caller_voice(1000, "Wait, stop, I need to change my order.")

    [verdict] = verdicts(run)
    assert verdict["verdict"] == "interruption"
    assert verdict["stopped_hearing_ms"] == 0
    [paused] = run.of_kind(RecordKind.ANSWER_PAUSED)
    assert paused.details["cleared"] is False
    assert -450 <= paused.details["stop_in_ms"] < 0  # "it had run out ... before"


def test_a_short_sound_with_no_pause_is_never_heard_as_a_gap() -> None:
    run = turn_run()
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.5)
    run.caller_voice(160, "")
    run.step(7.0)

    assert [v["verdict"] for v in verdicts(run)] == ["noise"]
    assert run.clears == []
    assert run.heard_ms() == pytest.approx(ANSWER_MS, abs=1)


def test_a_long_sound_interrupts_at_the_pause_and_truncates_to_what_was_heard() -> None:
    run = turn_run()
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.0)
    run.caller_voice(1000, "Wait, stop, I need to change my order.")

    [verdict] = verdicts(run)
    assert verdict["verdict"] == "interruption"
    assert verdict["decided_by"] == "length"
    [barge_in] = run.barge_ins
    [paused] = run.of_kind(RecordKind.ANSWER_PAUSED)
    # Heard until the held answer ran out (the caller stopped hearing the AI then), not
    # the verdict; nothing was cleared before the barge-in's own clear.
    assert paused.details["cleared"] is False
    # The held answer ran out before the pause (it ends 20 ms and the link's jitter
    # before the target, the pause the jitter and 10 ms before it): recorded where it did.
    assert paused.details["stop_in_ms"] == -10
    stopped = paused.at + paused.details["stop_in_ms"] / 1000
    heard = run.heard_ms()
    assert heard == pytest.approx((stopped - 0.0) * 1000, abs=1)
    assert barge_in.figures.audio_end_ms == pytest.approx(heard, abs=1)
    # What the caller was kept from hearing: the rest of the answer (held here, not sent).
    assert barge_in.figures.playout_remaining_ms == pytest.approx(ANSWER_MS - heard, abs=21)
    assert len(run.clears) == 1
    # It ran out in time for the stop target, counted from the caller's onset.
    onset = verdict["speech_onset_offset_ms"] / 1000
    assert verdict["stopped_hearing_ms"] == pytest.approx((stopped - onset) * 1000, abs=1)
    assert 400 <= verdict["stopped_hearing_ms"] <= 450
    # The caller's turn is answered once the service commits it.
    assert creates(run) == [{"type": "response.create"}]


def test_a_resume_waits_for_the_pauses_clear_to_say_where_the_caller_stopped() -> None:
    """Twilio's player starts each run 50 ms late (its jitter buffer): the caller hears
    the answer 50 ms behind the estimate, and the pause's cut is 50 ms too far. A "yeah"
    of 300 ms ends before the clear's marks are back to say so: the resume waits for them
    (a round trip at most), so the answer goes on from where the caller really stopped,
    heard whole and once (resumed at once, the 50 ms between were never heard)."""
    run = CoreRun(config=CoreConfig(stream_sid=STREAM_SID), link_delay_s=0.06)
    run.player.lead_s = 0.05
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.5)
    run.caller_voice(300, "Yeah.")
    run.step(8.0)

    assert run.heard_ms() == pytest.approx(ANSWER_MS, abs=1)
    assert any("the caller stopped 50 ms earlier than the cut" in log for log in run.logs)
    [paused] = run.of_kind(RecordKind.ANSWER_PAUSED)
    [resumed] = run.of_kind(RecordKind.ANSWER_RESUMED)
    # Recorded when it went on: the gap is all the silence, the wait part of it.
    assert resumed.details["waits_ms"] > 0
    assert resumed.details["gap_ms"] == pytest.approx((resumed.at - paused.at) * 1000, abs=1)
    assert resumed.details["gap_ms"] > resumed.details["waits_ms"]


def harness_frames() -> tuple[tuple[bytes, ...], bytes]:
    return tuple(harness._VOICE_FRAMES), harness._SILENCE


def test_a_new_sound_while_the_resume_waits_for_the_clear_keeps_the_answer_paused() -> None:
    """A "yeah" ends, its resume waits for the pause's clear to come back, and the caller
    breathes on meanwhile (100 ms more of the same sound): the answer stays paused (no
    second clear, the first one's marks still move the cut), and is heard whole, once,
    when the sound ends."""
    run = CoreRun(config=CoreConfig(stream_sid=STREAM_SID), link_delay_s=0.06)
    run.player.lead_s = 0.05
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.5)
    voiced, quiet = harness_frames()
    for n in range(15):  # 300 ms of voice
        run.core.caller_audio(voiced[n % len(voiced)], run.now)
        run.settle()
        run.step(run.now + 0.02)
    for _ in range(2):  # 40 ms of quiet: the sound ended, its resume waits
        run.core.caller_audio(quiet, run.now)
        run.settle()
        run.step(run.now + 0.02)
    assert run.core.tracker.resuming_by() is not None
    for n in range(5):  # 100 ms more of it, past when the clear's marks come back
        run.core.caller_audio(voiced[n % len(voiced)], run.now)
        run.settle()
        run.step(run.now + 0.02)
    assert run.core.tracker.held  # not resumed while the caller still speaks
    run.caller_audio(300)
    run.step(9.0)

    assert len(run.clears) == 1
    assert run.heard_ms() == pytest.approx(ANSWER_MS, abs=1)
    # One pause, one resume (the one that waited never went on): its gap is the caller's
    # whole silence, from the pause to the answer going on (the player, starting the
    # resumed run 50 ms late, adds that).
    [paused] = run.of_kind(RecordKind.ANSWER_PAUSED)
    [resumed] = run.of_kind(RecordKind.ANSWER_RESUMED)
    assert resumed.details["gap_ms"] == pytest.approx((resumed.at - paused.at) * 1000, abs=1)
    assert resumed.details["gap_ms"] == pytest.approx(sum(run.heard_gaps_ms()) - 50, abs=1)


def test_a_clear_slower_than_the_audio_moves_the_cut_on_to_what_was_heard() -> None:
    """The pause's clear takes 80 ms down, the audio 20: the caller heard 60 ms more than
    the cut said. The marks it returns time it (a mark after the last frames goes first
    when due), and the truncation is what the caller heard, not the cut."""
    run = CoreRun(config=LATE_HOLD, link_delay_s=0.02, clear_delay_s=0.08)
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.0)
    run.caller_voice(1000, "Wait, stop, I need to change my order.")

    [barge_in] = run.barge_ins
    heard = run.heard_ms()
    assert barge_in.figures.audio_end_ms == pytest.approx(heard, abs=2)
    [paused] = run.of_kind(RecordKind.ANSWER_PAUSED)
    assert heard - paused.details["heard_ms"] == pytest.approx(60, abs=2)
    [line] = [log for log in run.logs if "the clear's marks came back" in log]
    assert "it took 60 ms longer than the audio" in line


def test_a_pause_marks_the_end_of_what_was_sent_right_before_its_clear() -> None:
    """The answer comes as it plays, 60 ms at a time, 600 ms ahead (more than plays by the
    stop target: no hold, the pause clears): the frames sent last followed the last mark.
    The pause sends a mark after them, then the clear, at once."""
    run = CoreRun(config=LATE_HOLD)
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.AudioDelta("r1", "a1", tone(0x44, 600)))
    for step in range(1, 18):
        run.step(0.06 * step)
        run.event(rt.AudioDelta("r1", "a1", tone(0x44, 60)))
    run.caller_voice(1000, "Wait, stop, I need to change my order.")

    sent = [(s.at, s.message["event"]) for s in run.twilio]
    at = [event for _, event in sent].index("clear")
    [paused] = run.of_kind(RecordKind.ANSWER_PAUSED)
    assert paused.details["cleared"] is True
    assert sent[at - 2][1] == "media"
    assert sent[at - 1] == (sent[at][0], "mark")
    assert sent[at - 2][0] < sent[at][0]


def test_a_short_stop_is_an_interruption_once_its_words_come() -> None:
    run = turn_run()
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.0)
    run.caller_voice(400, "Stop.")

    [verdict] = verdicts(run)
    assert (verdict["verdict"], verdict["decided_by"]) == ("interruption", "stop_words")
    assert len(run.barge_ins) == 1
    assert creates(run) == [{"type": "response.create"}]
    assert len(run.model_events("conversation.item.truncate")) == 1


def test_echo_is_forgotten_and_never_answered() -> None:
    run = turn_run()
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.0)
    # The service took the AI's voice coming back for speech; the meter heard only echo.
    run.core.listener.judge._recent_loud.extend(
        [(run.now - 0.2 + n * 0.02, True) for n in range(10)]
    )
    run.event(rt.SpeechStarted(None, "item_echo"))
    run.step(5.5)
    run.event(rt.SpeechStopped(None, "item_echo"))

    assert [v["verdict"] for v in verdicts(run)] == ["echo"]
    assert run.clears == []
    assert creates(run) == []
    assert [e["item_id"] for e in run.model_events("conversation.item.delete")] == ["item_echo"]


def test_speech_while_the_ai_is_silent_is_answered_when_it_ends() -> None:
    run = turn_run()
    run.step(0.5)
    run.caller_voice(700, "When are you open?")

    assert verdicts(run) == []
    assert run.of_kind(RecordKind.USER_SPEECH_AI_SILENT)
    assert creates(run) == [{"type": "response.create"}]


def test_a_greeting_heard_whole_is_not_cut_and_the_caller_is_answered_after() -> None:
    run = turn_run(greeting_instructions="Read the notice.", greeting_interruptible=False)
    run.answer("r1", "a1", 3000)
    run.step(0.5)
    run.caller_voice(900, "Hello? Can I speak to someone?")
    run.step(4.0)

    [verdict] = verdicts(run)
    assert verdict["verdict"] == "interruption"
    assert verdict["interruptible"] is False
    assert run.clears == []
    assert run.heard_ms() == pytest.approx(3000, abs=1)
    assert len(creates(run)) == 2  # the greeting, then the caller's answer


def test_the_agents_own_threshold_decides_by_length() -> None:
    run = turn_run(turns=TurnPolicy(interrupt_after_ms=300))
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.0)
    run.caller_voice(400, "Uh-huh.")

    assert [v["decided_by"] for v in verdicts(run)] == ["length"]
    assert len(run.barge_ins) == 1


def test_a_yes_overlapping_the_end_of_the_answer_is_a_reply_and_answered() -> None:
    run = turn_run()
    run.answer("r1", "a1", 2000)
    run.step(1.85)
    run.caller_voice(400, "Yes.")
    run.step(4.0)

    [verdict] = verdicts(run)
    assert (verdict["verdict"], verdict["decided_by"]) == ("interruption", "reply")
    assert creates(run) == [{"type": "response.create"}]
    assert run.model_events("conversation.item.delete") == []


def test_a_long_noise_the_service_never_hears_as_speech_does_not_cut_the_answer() -> None:
    run = turn_run()
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.0)
    run.caller_voice(3000, item_id=None)  # a TV: loud, never speech to the service
    run.step(7.0)

    assert [(v["verdict"], v["decided_by"]) for v in verdicts(run)] == [("noise", "not_speech")]
    assert run.barge_ins == []
    assert run.heard_ms() == pytest.approx(ANSWER_MS, abs=1)
    assert creates(run) == []


def test_a_turn_of_two_items_is_answered_once_when_the_last_is_in() -> None:
    run = turn_run()
    run.answer("r1", "a1", ANSWER_MS)
    run.step(1.0)
    run.caller_voice(300, "Yeah,", item_id="u1")  # committed, its words in...
    run.caller_voice(1500, item_id="u2", committed=False)  # ...and they go on: interrupting
    assert len(run.barge_ins) == 1
    assert creates(run) == []  # not while the caller is still speaking
    run.event(rt.SpeechStopped(None, "u2"))
    assert creates(run) == [{"type": "response.create"}]


def test_a_tools_result_during_a_backchannel_is_answered_after_it() -> None:
    run = turn_run(tool_hold_after_ms=10_000)
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.AudioDelta("r1", "a1", tone(0x44, 2000)))
    run.event(rt.FunctionCallDone("r1", "call_1", "lookup", "{}"))
    run.event(rt.ResponseDone("r1", "completed", ()))
    run.step(0.5)
    run.caller_voice(400, item_id="u1", committed=False)
    run.core.tool_finished(
        ToolResult("call_1", "ok", '{"status": "packed"}', {}, run.now, 0.1), run.now
    )
    run.settle()
    assert creates(run) == []  # the caller speaks: their turn might answer it
    run.event(rt.SpeechStopped(None, "u1"))
    run.event(rt.InputTranscribed("u1", "Okay."))
    assert [v["verdict"] for v in verdicts(run)] == ["backchannel"]
    assert creates(run) == [{"type": "response.create"}]  # the result's answer


def test_a_greeting_heard_whole_is_not_cut_when_the_service_hears_speech_first() -> None:
    run = turn_run(greeting_instructions="Read the notice.", greeting_interruptible=False)
    run.answer("r1", "a1", 3000)
    run.step(0.5)
    run.event(rt.SpeechStarted(None, "u1"))
    run.caller_voice(900, item_id=None)
    run.event(rt.SpeechStopped(None, "u1"))
    run.step(4.0)

    assert run.clears == []
    assert run.heard_ms() == pytest.approx(3000, abs=1)


def test_a_sound_while_an_answer_is_asked_for_is_judged_not_answered_apart() -> None:
    run = turn_run()
    run.step(0.5)
    run.caller_voice(700, "When are you open?", item_id="q")
    assert len(creates(run)) == 1  # asked; the service has not started it yet
    run.caller_voice(300, "Mm.", item_id="m")
    run.event(rt.ResponseCreated("r1"))
    run.event(rt.ResponseDone("r1", "completed", ()))
    assert len(creates(run)) == 1
    assert [v["verdict"] for v in verdicts(run)] == ["backchannel"]


class LateRead:
    """The loop stalls 600 ms just before the pause is due (other calls' work; Twilio's
    player has 800 ms ahead, it plays on): the pause's clear leaves late, and the
    caller's frames queued meanwhile, read after it, already hold enough voice for an
    interruption. The marks the clear returns come after them: the player starts runs
    50 ms late, so they move the cut 50 ms back. Set up to the verdict; `on_time` goes
    on, a voiced frame read every 20 ms as it comes."""

    def __init__(self) -> None:
        self.run = run = CoreRun(config=LATE_HOLD, link_delay_s=0.02)
        run.player.lead_s = 0.05
        run.answer("r1", "a1", ANSWER_MS)
        self.voiced, quiet = harness_frames()
        self.sent = 0  # frames Twilio sent: its clock, 20 ms a frame
        self.n = 0
        for _ in range(50):  # a second of silence, read on time: the caller clock dates
            self.frame(quiet, run.now)
            run.step(run.now + 0.02)
        assert run.core.caller_clock.dating
        self.voice(run.now)  # the caller begins; the service hears speech
        run.event(rt.SpeechStarted(None, "item_user"))
        pause_due = run.core.next_timer()
        assert pause_due is not None
        while run.now + 0.02 < pause_due:
            self.on_time()
        # The stall: Twilio's frames (one every 20 ms) and echoes queue up unread.
        arrivals = [run.now + 0.02 * k for k in range(1, 31)]
        run.now += 0.6
        run.core.timer(run.now)  # the pause, late
        run.settle()
        assert run.clears == [pytest.approx(run.now)]
        self.cut = run.of_kind(RecordKind.ANSWER_PAUSED)[0].details["heard_ms"]
        read_at = run.now
        for at in arrivals:  # read in order, each a little after the last
            read_at += 0.0005
            for name in run.player.due_echoes(at):
                run.core.mark_echoed(name, read_at)
            self.voice(read_at)
        run.now = read_at
        [verdict] = run.of_kind(RecordKind.TURN_VERDICT)
        assert verdict.details["verdict"] == "interruption"
        assert run.barge_ins == []  # it waits for the clear's marks

    def frame(self, audio: Media, read_at: float) -> None:
        self.sent += 1
        self.run.core.caller_audio(dataclasses.replace(audio, timestamp_ms=20 * self.sent), read_at)
        self.run.settle()

    def voice(self, read_at: float) -> None:
        self.frame(self.voiced[self.n % len(self.voiced)], read_at)
        self.n += 1

    def on_time(self) -> None:
        self.run.step(self.run.now + 0.02)
        self.voice(self.run.now)


def test_a_barge_in_decided_before_the_late_read_clears_marks_truncates_to_what_was_heard() -> None:
    """The truncation waits for the clear's marks (Twilio's clock says they are not
    overdue: the frames read were sent before the clear went), and is what the caller
    heard, not the cut. Their turn ends meanwhile: answered after the truncation."""
    call = LateRead()
    run = call.run
    run.event(rt.SpeechStopped(None, "item_user"))
    assert run.model_events("response.create") == []
    # A timer may release it: the shell runs that where what it sends leaves at once.
    assert run.core.sends_due(run.now)
    while not run.barge_ins:  # back on time: the marks come back
        call.on_time()
    heard = run.heard_ms()
    [barge_in] = run.barge_ins
    assert heard == pytest.approx(call.cut - 50, abs=2)
    # Within a frame: Twilio's clock dates a message read between two frames no closer.
    assert barge_in.figures.audio_end_ms == pytest.approx(heard, abs=20)
    kinds = [event["type"] for event in run.model]
    assert kinds.index("conversation.item.truncate") < kinds.index("response.create")


def test_a_function_call_of_the_answer_cut_while_its_barge_in_waits_is_not_run() -> None:
    """The interrupted answer's tool call completes while its barge-in waits for the
    clear's marks: the caller never heard the AI say it would, so it is not run."""
    call = LateRead()
    run = call.run
    run.event(rt.FunctionCallDone("r1", "call_1", "lookup_order", "{}"))
    assert run.tools == []
    while not run.barge_ins:
        call.on_time()
    assert run.tools == []


def test_a_model_fault_while_the_barge_in_waits_truncates_and_owes_the_new_session() -> None:
    """The model's socket closes while the barge-in waits, the caller's turn over: the
    barge-in goes at once (the old session's), and the new session is asked for the
    answer, not the old one."""
    call = LateRead()
    run = call.run
    run.event(rt.SpeechStopped(None, "item_user"))
    run.core.model_closed(False, run.now)
    run.settle()
    assert len(run.barge_ins) == 1
    [fault] = run.of_kind(RecordKind.MODEL_FAULT)
    assert fault.details["answer_owed"] is True
    assert run.replacements
    assert run.model[-1] == {"type": "response.create"}
