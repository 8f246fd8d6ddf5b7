"""Hold, pause and resume: the bridge's doubt about a caller's sound, byte-exact."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from playout import (
    AudioFrame,
    EchoResult,
    HoldState,
    MarkOut,
    PlayoutConfig,
    PlayoutTracker,
    SpeakingReason,
    Truncation,
)

from .harness import Shell

#: A link measured as instant, so each echo's lateness is the player's alone.
INSTANT = PlayoutConfig(link_rtt_prior_ms=0, link_jitter_prior_ms=0)


def pattern(size: int, seed: int = 0) -> bytes:
    """Audio whose every byte says where it came from (never 0xFF, mu-law silence)."""
    return bytes((seed + i) % 251 for i in range(size))


def answer(shell: Shell, ms: int, item: str = "i1", seed: int = 0, done: bool = True) -> bytes:
    audio = pattern(ms * 8, seed)
    for at in range(0, len(audio), 1234):  # uneven deltas, as the model sends them
        assert shell.tracker.audio_delta("r1", item, audio[at : at + 1234], shell.now)
    if done:
        shell.tracker.audio_done("r1", item, shell.now)
    return audio


def sent(shell: Shell) -> bytes:
    return b"".join(frame.payload for frame in shell.frames)


def test_hold_sends_nothing_new_and_resume_goes_on_in_order() -> None:
    shell = Shell()
    audio = answer(shell, 2000, done=False)
    shell.run_until(0.25)  # sent: 500 ms (the lead, topped up at 0.1 and 0.2)
    shell.hold()
    assert shell.tracker.held
    before = len(shell.frames)
    more = pattern(400 * 8, seed=len(audio))
    assert shell.tracker.audio_delta("r1", "i1", more, 0.3)  # still accepted, held here
    shell.run_until(1.0)
    assert len(shell.frames) == before
    assert shell.tracker.next_send_at() is None
    assert shell.tracker.drain_status(1.0).pending_bytes == 2400 * 8 - 500 * 8
    shell.hold()  # idempotent
    shell.resume()
    shell.tracker.audio_done("r1", "i1", shell.now)
    shell.run_until(5.0)
    assert sent(shell) == audio + more
    assert shell.player.heard_payload() == audio + more
    assert shell.sent_while_held == []


def test_a_hold_marks_the_end_of_what_twilio_still_plays() -> None:
    shell = Shell(PlayoutConfig(mark_interval_ms=250, link_rtt_prior_ms=0))
    answer(shell, 2000)
    shell.run_until(0.25)  # 500 ms sent, the last mark after 300 ms of it
    assert shell.tracker.snapshot(0.25).outstanding_marks == 1
    shell.hold()
    # A mark follows the last frame sent: its echo, when that audio has played,
    # dates the end of what the caller hears.
    assert shell.tracker.snapshot(0.25).outstanding_marks == 2
    shell.run_until(1.0)
    accepted = [e for e in shell.echoes if e.accepted]
    assert [e.position_ms for e in accepted] == [300, 500]
    assert shell.tracker.drain_status(1.0).final_mark_echoed


def test_a_hold_until_a_time_plays_the_answer_up_to_it_and_marks_where_it_ends() -> None:
    """The caller hears the answer up to `until` and not after, without a clear: pacing
    tops Twilio up to it, a mark follows the last frame, and `resume` goes on from the
    next byte, each sent once."""
    shell = Shell(PlayoutConfig(mark_interval_ms=250, link_rtt_prior_ms=0))
    tracker = shell.tracker
    audio = answer(shell, 3000)
    shell.run_until(0.15)  # 400 ms sent (the lead, topped up at 0.1)
    # Not a frame's end: the frame from 0.54 goes cut at 0.55, in the middle of the
    # refill at 0.3 (pacing would send to 0.6).
    shell.hold(until=0.55)
    assert tracker.held
    shell.run_until(0.5)
    assert tracker.plays_until(0.5) == pytest.approx(0.55)
    assert len(shell.frames[-1].payload) == 10 * 8  # the frame the hold cut
    assert tracker.next_send_at() is None  # the rest of it would play after 0.55
    shell.run_until(1.0)
    assert sent(shell) == audio[: 550 * 8]
    assert shell.sent_while_held == []
    assert shell.player.heard_payload() == audio[: 550 * 8]
    assert tracker.plays_until(1.0) is None
    accepted = [e.position_ms for e in shell.echoes if e.accepted]
    assert accepted[-1] == 550  # the hold's mark: the end of what the caller heard
    assert tracker.heard_ms("i1", 1.0) == 550
    shell.resume()
    shell.run_until(5.0)
    assert sent(shell) == audio
    assert shell.player.heard_payload() == audio


@pytest.mark.parametrize(("until_ms", "heard_ms"), [(544, 540), (545, 545), (559, 559)])
def test_a_hold_cuts_its_last_frame_unless_too_little_of_it_would_go(
    until_ms: int, heard_ms: int
) -> None:
    """The frame the hold's `until` falls in goes cut there, but not 4 ms of it: the
    caller hears the answer up to `until` (less than 5 ms short), and the resume goes
    on from the first byte not sent."""
    shell = Shell(PlayoutConfig(mark_interval_ms=250, link_rtt_prior_ms=0))
    audio = answer(shell, 3000)
    shell.run_until(0.15)
    shell.hold(until=until_ms / 1000)
    shell.run_until(1.0)
    assert sent(shell) == audio[: heard_ms * 8]
    assert shell.player.heard_payload() == audio[: heard_ms * 8]
    assert [e.position_ms for e in shell.echoes if e.accepted][-1] == heard_ms
    shell.resume()
    shell.run_until(5.0)
    assert sent(shell) == audio
    assert shell.player.heard_payload() == audio


def test_a_hold_until_a_time_already_sent_past_sends_nothing_more() -> None:
    """The audio sent already plays beyond `until`: what was sent plays on (the shell
    clears it if it must); a second hold moves `until` earlier, never later."""
    shell = Shell()
    tracker = shell.tracker
    answer(shell, 2000)
    shell.run_until(0.25)  # 500 ms sent
    shell.hold(until=0.4)
    before = len(shell.frames)
    shell.hold(until=0.9)  # not later: still 0.4
    shell.run_until(0.45)
    assert len(shell.frames) == before
    assert tracker.plays_until(0.45) == pytest.approx(0.5)
    outcome = shell.pause()
    assert outcome.requeued_ms == 50
    shell.resume()
    shell.run_until(5.0)
    assert shell.player.heard_payload() == pattern(2000 * 8)


def test_a_hold_until_a_time_still_comes_in_and_then_a_full_hold() -> None:
    """Audio that comes in while held goes out as long as it plays by `until`; a hold
    without `until` then stops it at once."""
    shell = Shell()
    tracker = shell.tracker
    answer(shell, 100, done=False)
    shell.run_until(0.05)  # the start hold: nothing yet, too little
    shell.hold(until=1.0)
    assert tracker.audio_delta("r1", "i1", pattern(300 * 8, seed=100 * 8), 0.1)
    shell.run_until(0.2)
    assert len(sent(shell)) > 0
    shell.hold()
    count = len(shell.frames)
    assert tracker.audio_delta("r1", "i1", pattern(500 * 8, seed=400 * 8), 0.3)
    shell.run_until(2.0)
    assert len(shell.frames) == count


def test_a_hold_marks_the_end_when_audio_that_came_later_does_not_fit() -> None:
    """All of the answer so far sent, unmarked; held until just past it (less than the
    least cut frame); the next audio would play after `until`: a mark follows the last
    frame sent all the same."""
    shell = Shell(PlayoutConfig(mark_interval_ms=1000, link_rtt_prior_ms=0))
    tracker = shell.tracker
    answer(shell, 200, done=False)
    shell.run_until(0.05)
    assert tracker.snapshot(0.05).outstanding_marks == 0
    shell.hold(until=0.204)
    assert tracker.audio_delta("r1", "i1", pattern(300 * 8, seed=200 * 8), 0.06)
    shell.run_until(0.06)
    assert tracker.snapshot(0.06).outstanding_marks == 1
    shell.run_until(1.0)
    assert [e.position_ms for e in shell.echoes if e.accepted][-1] == 200


def test_a_resume_waits_for_the_pauses_clear_until_a_round_trip_at_most() -> None:
    """The clear's marks never come back (lost): the resume waits a round trip, twice the
    jitter and a frame after the clear, and then goes on from the cut."""
    shell = Shell(delay_s=0.03, echo_delay_s=0.03)
    tracker = shell.tracker
    audio = answer(shell, 3000)
    shell.run_until(1.0)  # echoes: the link is measured
    link = tracker.link
    assert link.samples > 0
    rtt_s, jitter_s = link.rtt_s, link.jitter_s
    shell.pause()
    shell.player.marks.clear()  # the marks the clear returns are lost on the way
    shell.run_until(1.02)
    tracker.resume(1.02)
    by = tracker.resuming_by()
    assert by is not None
    assert 1.0 + rtt_s <= by <= 1.0 + rtt_s + 2 * jitter_s + 0.02 + 1e-9
    assert tracker.held
    deadline = tracker.next_deadline()
    assert deadline is not None
    assert deadline <= by
    shell.run_until(by - 0.001)
    assert tracker.held
    shell.run_until(by)
    assert not tracker.held
    assert tracker.resuming_by() is None
    shell.run_until(6.0)
    assert shell.player.heard_payload() == audio


def test_pause_resends_from_the_heard_byte_at_the_link_prior() -> None:
    """No echo yet (the player is 100 ms away): the estimate alone places the clear."""
    shell = Shell(delay_s=0.1, echo_delay_s=0.1)
    audio = answer(shell, 2000)
    shell.run_until(0.25)
    assert shell.tracker.link.samples == 0
    pending_before = shell.tracker.drain_status(0.25).pending_bytes

    outcome = shell.pause()

    assert (outcome.item_id, outcome.heard_ms, outcome.requeued_ms) == ("i1", 250, 250)
    assert outcome.evidence.hold == HoldState.FLOWING
    assert shell.tracker.drain_status(0.25).pending_bytes == pending_before + 250 * 8
    shell.run_until(0.6)
    resumed_at = len(shell.frames)
    shell.resume()
    assert shell.frames[resumed_at].payload == audio[2000 : 2000 + 160]
    shell.run_until(5.0)
    # The clear landed at 0.35, when the caller had heard exactly 250 ms: every byte
    # once, in order.
    assert shell.player.heard_payload() == audio
    assert shell.gaps == []


def test_pause_resends_from_the_heard_byte_once_echoes_placed_the_player() -> None:
    shell = Shell(delay_s=0.06, echo_delay_s=0.06)
    audio = answer(shell, 3000)
    shell.run_until(1.0)
    assert shell.tracker.link.rtt_s == pytest.approx(0.12)
    outcome = shell.pause()
    assert outcome.heard_ms == 1000
    shell.run_until(1.3)
    shell.resume()
    shell.run_until(6.0)
    assert shell.player.heard_payload() == audio


def test_pause_follows_an_echo_that_put_the_player_behind() -> None:
    """The player stalled 100 ms: the pause takes back from where it really is."""
    tracker = PlayoutTracker(PlayoutConfig(lead_ms=1000, link_rtt_prior_ms=0))
    audio = pattern(1000 * 8)
    tracker.audio_delta("r1", "i1", audio, 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    names = [o.name for o in tracker.poll(0.0) if isinstance(o, MarkOut)]
    tracker.mark_echoed(names[0], 0.1)
    tracker.mark_echoed(names[2], 0.4)  # due at 0.3
    outcome = tracker.pause(0.5)
    assert (outcome.heard_ms, outcome.requeued_ms) == (400, 600)
    tracker.resume(0.6)
    resent = [o for o in tracker.poll(0.6) if isinstance(o, AudioFrame)]
    assert b"".join(f.payload for f in resent) == audio[3200:]


def test_a_pause_across_items_gives_each_its_own_audio_back_in_order() -> None:
    shell = Shell()
    first = answer(shell, 110, item="a")
    second = answer(shell, 250, item="b", seed=5)
    shell.run_until(0.05)  # all of a and 180 ms of b sent (the lead); 50 ms of a heard
    outcome = shell.pause()
    assert (outcome.item_id, outcome.heard_ms, outcome.requeued_ms) == ("a", 50, 240)
    assert shell.tracker.heard_ms("b", 0.05) == 0
    shell.run_until(0.2)
    resumed_at = len(shell.frames)
    shell.resume()
    shell.run_until(2.0)
    again = shell.frames[resumed_at:]
    assert [f.item_id for f in again[:4]] == ["a", "a", "a", "b"]  # 60 ms of a: 20+20+20
    assert shell.player.heard_payload("a") == first
    assert shell.player.heard_payload("b") == second
    # Each item's end mark follows its own last frame again.
    ends = [(e.item_id, e.position_ms) for e in shell.echoes if e.accepted]
    assert ("a", 110) in ends
    assert ("b", 360) in ends


def test_an_echo_from_before_a_resumed_run_does_not_move_it_ahead() -> None:
    """Held until Twilio ran dry at 0.5, resumed at 0.55: the echo of the last mark
    (dated 0.5, arriving a round trip later) says nothing about the new run, which
    started when it was sent."""
    shell = Shell(delay_s=0.05, echo_delay_s=0.05)
    audio = answer(shell, 1500)
    shell.run_until(0.25)
    shell.hold()
    shell.run_until(0.55)
    shell.resume()
    shell.run_until(0.65)  # the echo of the mark after 500 ms came at 0.6
    assert shell.tracker.heard_ms("i1", 0.65) == 600
    assert shell.tracker.snapshot(0.65).unplayed_ms == 300  # the lead, just topped up
    outcome = shell.pause()
    assert (outcome.heard_ms, outcome.requeued_ms) == (600, 300)
    shell.resume()
    shell.run_until(3.0)
    assert shell.player.heard_payload() == audio
    assert shell.gaps == []


def test_marks_cleared_by_a_pause_are_not_evidence() -> None:
    shell = Shell(delay_s=0.05, echo_delay_s=0.05)
    answer(shell, 2000)
    shell.run_until(0.42)
    heard = shell.tracker.heard_ms("i1", 0.42)
    samples = shell.tracker.link.samples
    outstanding = shell.tracker.snapshot(0.42).outstanding_marks
    echoes_before = len(shell.echoes)

    outcome = shell.pause()
    shell.run_until(0.52)  # the clear's round trip: its marks come back

    returned = shell.echoes[echoes_before:]
    assert outcome.marks_cleared == outstanding == len(returned) > 0
    assert {e.result for e in returned} == {EchoResult.CLEARED_BY_PAUSE}
    assert not any(e.link_sample for e in returned)
    assert shell.tracker.link.samples == samples
    assert shell.tracker.heard_ms("i1", 0.42) == heard
    assert shell.tracker.heard_ms("i1", 2.0) == heard  # nothing plays in a pause
    assert shell.tracker.snapshot(0.42).outstanding_marks == 0


def test_a_paused_tracker_hands_out_no_stale_output() -> None:
    """Output handed out before a clear is of an old epoch: the shell drops it unsent."""
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", pattern(1000 * 8), 0.0)
    queued = tracker.poll(0.0)  # the shell has not sent these yet
    assert {o.epoch for o in queued} == {0}
    outcome = tracker.pause(0.0)
    assert outcome.epoch == tracker.epoch == 1
    assert not any(tracker.is_current(o.epoch) for o in queued)
    assert all(tracker.is_live(o.generation) for o in queued)  # the same answer goes on
    assert outcome.requeued_ms == 300  # none of it was heard
    tracker.resume(0.0)
    again = tracker.poll(0.0)
    assert all(tracker.is_current(o.epoch) for o in again)
    assert [o.payload for o in again if isinstance(o, AudioFrame)] == [
        o.payload for o in queued if isinstance(o, AudioFrame)
    ]
    tracker.cancel(0.1)
    assert not any(tracker.is_current(o.epoch) for o in again)


def test_resume_after_a_pause_starts_at_once_and_measures_the_link() -> None:
    config = PlayoutConfig(start_hold_ms=20, start_fill_ms=100, link_rtt_prior_ms=100)
    tracker = PlayoutTracker(config)
    tracker.audio_delta("r1", "i1", pattern(60 * 8), 1.0)  # the answer goes on
    assert tracker.poll(1.0) == []
    assert len(tracker.poll(1.02)) == 3  # the start hold: 20 ms
    tracker.pause(1.03)  # 10 ms heard, 50 ms back in pending (less than the fill)
    tracker.resume(1.035)
    assert tracker.next_send_at() == 1.035  # no start hold
    out = tracker.poll(1.035)
    assert [len(o.payload) for o in out if isinstance(o, AudioFrame)] == [160, 160]
    tracker.audio_done("r1", "i1", 1.035)
    out = tracker.poll(1.035)
    (mark,) = [o for o in out if isinstance(o, MarkOut)]
    echo = tracker.mark_echoed(mark.name, 1.035 + 0.05 + 0.03)
    assert echo.link_sample
    assert tracker.link.rtt_s == pytest.approx(0.03)


def test_cancel_in_a_pause_truncates_to_what_was_heard_at_the_pause() -> None:
    shell = Shell()
    answer(shell, 1000)
    answer(shell, 500, item="i2", seed=3)
    shell.run_until(0.25)
    shell.pause()
    shell.run_until(1.0)  # a long doubt: nothing is heard meanwhile
    outcome = shell.cancel()
    assert outcome.truncate == Truncation("i1", 250)
    assert outcome.delete_item_ids == ("i2",)
    assert outcome.evidence.hold == HoldState.PAUSED
    assert outcome.evidence.pending_ms == 1250
    assert outcome.evidence.unplayed_ms == 0
    tracker = shell.tracker
    assert not tracker.held
    assert tracker.snapshot(1.0).pending_ms == 0
    assert tracker.heard_ms("i1", 1.0) == 250


def test_cancel_in_a_hold_truncates_to_what_the_sent_audio_played() -> None:
    shell = Shell()
    answer(shell, 1000)
    shell.run_until(0.25)
    shell.hold()  # 500 ms sent: it plays on
    shell.run_until(1.0)
    outcome = shell.cancel()
    assert outcome.truncate == Truncation("i1", 500)
    assert outcome.evidence.hold == HoldState.HELD
    assert not shell.tracker.held


def test_audible_and_speaking_through_a_hold() -> None:
    shell = Shell()
    tracker = shell.tracker
    answer(shell, 2000)
    shell.run_until(0.25)
    assert tracker.audible(0.25)
    assert tracker.speaking_reason(0.25) == SpeakingReason.PLAYOUT
    shell.hold()
    shell.run_until(0.45)
    assert tracker.audible(0.45)  # what Twilio holds (to 0.5) plays on
    shell.run_until(0.55)
    assert not tracker.audible(0.55)
    # The deadline is the end of what was sent; the caller hears it up to one way
    # (0: measured) + grace (40) + twice the jitter (40, the prior) on.
    assert tracker.snapshot(0.55).deadline == pytest.approx(0.5)
    assert tracker.speaking_reason(0.579) == SpeakingReason.PLAYOUT
    assert tracker.speaking_reason(0.581) == SpeakingReason.HELD
    shell.run_until(3.0)
    assert tracker.speaking_reason(3.0) == SpeakingReason.HELD
    assert tracker.snapshot(3.0).hold == HoldState.HELD
    shell.resume()
    assert tracker.audible(3.0)
    assert tracker.speaking_reason(3.0) == SpeakingReason.PLAYOUT
    shell.run_until(10.0)
    assert not tracker.is_speaking(10.0)


def test_audible_and_speaking_through_a_pause() -> None:
    shell = Shell()
    tracker = shell.tracker
    answer(shell, 2000)
    shell.run_until(0.25)
    shell.pause()
    assert not tracker.audible(0.25)  # the clear lands where a frame sent now would
    # The caller may still hear it until the deadline + one way + grace + 2 x jitter.
    assert tracker.snapshot(0.25).deadline == pytest.approx(0.25)
    assert tracker.speaking_reason(0.329) == SpeakingReason.PLAYOUT
    assert tracker.speaking_reason(0.331) == SpeakingReason.HELD
    shell.run_until(2.0)
    assert tracker.speaking_reason(2.0) == SpeakingReason.HELD
    assert not tracker.audible(2.0)
    tracker.hold(2.0)  # a hold while paused stays a pause
    assert tracker.snapshot(2.0).hold == HoldState.PAUSED
    shell.resume()
    assert tracker.audible(2.0)
    shell.run_until(10.0)
    assert not tracker.is_speaking(10.0)


def test_a_hold_with_nothing_held_keeps_nothing_speaking() -> None:
    """All the answer sent and complete: the hold holds no audio; only the playout speaks."""
    shell = Shell()
    answer(shell, 200)
    shell.run_until(0.1)
    shell.hold()
    shell.run_until(2.0)
    assert shell.tracker.speaking_reason(2.0) is None
    assert shell.tracker.drain_status(2.0).done


def test_a_hold_on_an_answer_still_coming_is_speaking() -> None:
    shell = Shell()
    answer(shell, 200, done=False)
    shell.run_until(0.1)
    shell.hold()
    shell.run_until(2.0)  # nothing held here yet, but the model's answer is open
    assert shell.tracker.speaking_reason(2.0) == SpeakingReason.HELD
    shell.tracker.audio_done("r1", "i1", 2.0)
    assert shell.tracker.speaking_reason(2.0) is None


def test_drain_is_not_done_while_audio_is_held() -> None:
    shell = Shell()
    audio = answer(shell, 1000)
    shell.tracker.response_done("r1", 0.0)
    shell.run_until(0.25)
    shell.pause()
    shell.run_until(30.0)
    status = shell.tracker.drain_status(30.0)
    assert not status.done
    assert status.pending_ms == 750
    assert status.expected_wait_ms == 750
    shell.resume()
    shell.run_until(32.0)
    assert shell.tracker.drain_status(32.0).done
    assert shell.player.heard_payload() == audio


def test_heard_audio_across_a_run_a_gap_and_a_pause() -> None:
    shell = Shell()
    tracker = shell.tracker
    first = answer(shell, 200, item="a")  # plays 0.0-0.2
    shell.run_until(0.5)
    second = answer(shell, 1000, item="b", seed=7)  # from 0.5
    shell.run_until(0.8)
    shell.pause()  # 300 ms of b heard
    shell.run_until(1.0)
    shell.resume()  # the rest of b: 1.0-1.7
    shell.run_until(2.5)

    silence = b"\xff"
    expected = (
        first
        + silence * (300 * 8)
        + second[: 300 * 8]
        + silence * (200 * 8)
        + second[300 * 8 :]
        + silence * (300 * 8)
    )
    assert tracker.heard_audio(0.0, 2.0) == expected
    assert shell.player.audio(0.0, 2.0) == expected
    for start in (0.1234, 0.19, 0.49, 0.7999, 0.95, 1.69):
        window = tracker.heard_audio(start, start + 0.35)
        assert len(window) == 2800
        assert window == shell.player.audio(start, start + 0.35)
    assert tracker.heard_audio(0.3, 0.3) == b""
    assert tracker.heard_audio(-1.0, 0.0) == silence * 8000


def test_heard_audio_follows_echoes_and_survives_a_cancel() -> None:
    shell = Shell(delay_s=0.04, echo_delay_s=0.04)
    answer(shell, 1500)
    shell.run_until(0.9)
    before = shell.tracker.heard_audio(0.5, 0.9)
    shell.cancel()
    shell.run_until(1.2)
    # On the clock of our sends: the player is one way later.
    assert shell.tracker.heard_audio(0.5, 0.9) == before
    assert before == shell.player.audio(0.54, 0.94)
    assert shell.tracker.heard_audio(0.9, 1.2) == b"\xff" * 2400


def test_heard_audio_keeps_history_ms_only() -> None:
    shell = Shell(PlayoutConfig(history_ms=100))
    answer(shell, 10000)
    shell.run_until(10.5)
    assert shell.tracker.heard_audio(0.0, 1.0) == b"\xff" * 8000  # forgotten
    assert shell.tracker.heard_audio(9.85, 10.05) == shell.player.audio(9.85, 10.05)


def test_history_ms_is_validated() -> None:
    assert PlayoutConfig().history_ms == 2000
    with pytest.raises(ValueError, match="history_ms"):
        PlayoutConfig(history_ms=-1)


def test_a_pause_placed_with_the_players_lead_moves_back_when_the_clear_returns() -> None:
    """The player starts runs 100 ms late: the echoes, dated with a round trip that
    holds that lead, put it 100 ms further on than it is, and the pause's cut with it.
    The marks the clear returns measure the link alone: the cut moves back 100 ms, and
    the resumed answer goes on from the byte the caller really stopped at."""
    shell = Shell(delay_s=0.02, echo_delay_s=0.02, lead_s=0.1)
    audio = answer(shell, 3000)
    shell.run_until(1.0)
    outcome = shell.pause()
    # By the estimate; the clear reached the player at 1.02, 900 ms into a run begun at 0.12.
    assert outcome.heard_ms == 1000
    shell.run_until(1.2)  # the clear's marks came back at 1.04
    assert shell.tracker.recut_bytes == -100 * 8
    assert shell.tracker.heard_ms("i1", 1.2) == 900
    shell.resume()
    shell.run_until(6.0)
    assert shell.player.heard_payload() == audio  # every byte once, in order


def test_a_pause_whose_clear_took_longer_than_the_audio_moves_on_when_it_returns() -> None:
    """The clear takes 70 ms down where the audio took 20: the caller heard 50 ms more
    than the cut said. The marks it returns time its trip: the cut moves on 50 ms (what
    is truncated is what was heard), and the answer resumes after it, not repeating it."""
    shell = Shell(delay_s=0.02, echo_delay_s=0.02, clear_delay_s=0.07)
    audio = answer(shell, 3000)
    shell.run_until(1.0)
    outcome = shell.pause()
    assert outcome.heard_ms == 1000  # by the estimate: where a clear 20 ms down lands
    shell.run_until(1.2)  # the clear reached the player at 1.07; its marks came back at 1.09
    assert shell.tracker.recut_bytes == 50 * 8
    assert shell.tracker.heard_ms("i1", 1.2) == 1050
    # What the caller heard, as the echo meter reads it: on past the cut, to 1050 ms.
    assert shell.tracker.heard_audio(0.9, 1.2) == shell.player.audio(0.92, 1.22)
    assert shell.cancel().truncate == Truncation("i1", 1050)
    assert shell.player.heard_payload() == audio[: 1050 * 8]


def test_a_clear_slower_than_the_rest_of_the_answer_moves_the_cut_to_its_end() -> None:
    """The clear takes 170 ms down; the 100 ms left of the answer played out before it
    arrived, so the last mark echoes by itself, a round trip after the answer's end, as
    the clear's marks would: the cut moves to the end, and nothing is sent again."""
    shell = Shell(delay_s=0.02, echo_delay_s=0.02, clear_delay_s=0.17)
    audio = answer(shell, 1100)
    shell.run_until(1.0)
    shell.pause()
    shell.run_until(1.3)
    assert shell.tracker.recut_bytes == 100 * 8
    assert shell.tracker.heard_ms("i1", 1.3) == 1100
    shell.resume()
    shell.run_until(3.0)
    assert shell.player.heard_payload() == audio
    assert shell.tracker.drain_status(3.0).done


@pytest.mark.parametrize(("dated", "moved_ms"), [(False, 0), (True, 30)])
def test_a_clear_within_the_links_jitter_moves_the_cut_only_on_echoes_twilio_dated(
    dated: bool, moved_ms: int
) -> None:
    """30 ms slower than the audio: within twice the link's jitter (20 ms, the prior),
    which is in an echo dated as it was read, so one trip says too little to move the
    cut; an echo Twilio's clock dated is good to a frame (20 ms), and it moves."""
    shell = Shell(delay_s=0.02, echo_delay_s=0.02, clear_delay_s=0.05, dated_echoes=dated)
    answer(shell, 3000)
    shell.run_until(1.0)
    shell.pause()
    shell.run_until(1.2)
    assert shell.tracker.recut_bytes == moved_ms * 8
    assert shell.tracker.heard_ms("i1", 1.2) == 1000 + moved_ms


def assert_once_in_order(heard: bytes, audio: bytes, slip: int) -> None:
    """`heard` is `audio`, but for one repeat or skip of at most `slip` bytes."""
    if heard == audio:
        return
    at = next(
        (i for i, (a, b) in enumerate(zip(heard, audio, strict=False)) if a != b),
        min(len(heard), len(audio)),
    )
    resumed = [j for j in range(max(0, at - slip), at + slip + 1) if heard[at:] == audio[j:]]
    assert resumed, f"heard diverges from the answer at byte {at}, not by a slip"


def trickle(shell: Shell, audio: bytes, sent: int, until: float, chunk: int) -> int:
    """The model's audio arriving as fast as it plays, `chunk` bytes at a time, until
    `until`: from byte `sent` on; returns how far it got."""
    while sent < len(audio) and shell.now < until - 1e-9:
        shell.tracker.audio_delta("r1", "i1", audio[sent : sent + chunk], shell.now)
        sent += chunk
        if sent >= len(audio):
            shell.tracker.audio_done("r1", "i1", shell.now)
        shell.run_until(min(shell.now + chunk / 8000, until))
    shell.run_until(max(until, shell.now))
    return sent


def test_a_pause_while_the_answer_comes_in_marks_the_end_of_what_was_sent() -> None:
    """The answer comes as it plays, 200 ms ahead: each 60 ms of it goes out as it comes,
    and the last frames followed the last mark. The pause sends one after them, before
    the clear; its echo times the clear's trip (70 ms down, the audio's 20), and the cut
    moves on the 50 ms the caller heard."""
    shell = Shell(delay_s=0.02, echo_delay_s=0.02, clear_delay_s=0.07)
    audio = pattern(3000 * 8)
    assert shell.tracker.audio_delta("r1", "i1", audio[:1600], 0.0)
    got = trickle(shell, audio, 1600, 1.04, chunk=480)
    outcome = shell.pause()
    assert outcome.closing_mark is not None
    assert outcome.heard_ms == 1040
    got = trickle(shell, audio, got, 1.24, chunk=480)
    assert shell.tracker.recut_bytes == 50 * 8
    shell.resume()
    trickle(shell, audio, got, 6.0, chunk=480)
    assert shell.player.heard_payload() == audio


@settings(max_examples=200, deadline=None)
@given(
    pause_ms=st.integers(600, 2500),
    one_way_ms=st.integers(0, 100),
    clear_ms=st.integers(0, 200),
    lead_ms=st.sampled_from([0, 0, 40, 100]),
    resume_after_ms=st.integers(0, 500),
    chunk=st.sampled_from([None, 480, 560, 1234]),
    hold=st.none() | st.tuples(st.integers(0, 300), st.integers(0, 500)),
)
# The clear stopped the player before the run the last send began had reached it.
@example(
    pause_ms=1080, one_way_ms=2, clear_ms=0, lead_ms=0, resume_after_ms=0, chunk=1234, hold=None
)
def test_a_paused_answer_resumed_after_the_clear_returned_is_heard_once_in_order(
    pause_ms: int,
    one_way_ms: int,
    clear_ms: int,
    lead_ms: int,
    resume_after_ms: int,
    chunk: int | None,
    hold: tuple[int, int] | None,
) -> None:
    """Whatever the clear's own trip and the player's lead, and whether the answer came
    at once or comes as it plays (`chunk`), once the clear's marks are back the cut is
    where the player stopped: resumed, every byte heard once, in order, but for a repeat
    or a skip of at most a frame (what one trip cannot tell; a link measured without
    jitter, so every difference beyond that is acted on). A player with a lead while the
    answer trickles in makes the link unmeasurable (a run the sends took for one into a
    dry player was not), so the lead is tried with the answer all at once. `hold`: a
    hold (until some time after it) some time before the pause, as for a caller's sound."""
    assume(chunk is None or lead_ms == 0)
    shell = Shell(
        INSTANT,
        delay_s=one_way_ms / 1000,
        echo_delay_s=one_way_ms / 1000,
        lead_s=lead_ms / 1000,
        clear_delay_s=clear_ms / 1000,
    )
    audio = pattern(3000 * 8)
    size = chunk or len(audio)
    got = 0
    if hold is not None:
        before_ms, until_ms = hold
        got = trickle(shell, audio, got, (pause_ms - before_ms) / 1000, chunk=size)
        shell.hold(until=shell.now + until_ms / 1000)
    got = trickle(shell, audio, got, pause_ms / 1000, chunk=size)
    shell.pause()
    returned = shell.now + (clear_ms + one_way_ms + resume_after_ms) / 1000 + 0.001
    got = trickle(shell, audio, got, returned, chunk=size)
    shell.resume()
    trickle(shell, audio, got, shell.now + 5.0, chunk=size)
    assert_once_in_order(shell.player.heard_payload(), audio, slip=160)


def test_a_pause_before_the_link_is_measured_is_not_moved_by_the_clears_return() -> None:
    """No echo yet: the round trip is the prior, so a trip's difference from it says
    nothing of where the player was; the cut stays where the sends put the player."""
    shell = Shell(delay_s=0.05, echo_delay_s=0.05)
    answer(shell, 2000)
    shell.run_until(0.08)
    outcome = shell.pause()
    shell.run_until(0.3)
    assert shell.tracker.recut_bytes == 0
    assert shell.tracker.heard_ms("i1", 0.3) == outcome.heard_ms


def _paused_with_the_clear_out(lead_s: float = 0.1) -> tuple[Shell, float]:
    """An answer paused at 1.0 (the player starts runs `lead_s` late, so the cut is that
    far ahead of the caller); the caller's frames read so far reached us by 1.0."""
    shell = Shell(delay_s=0.02, echo_delay_s=0.02, lead_s=lead_s, dated_echoes=True)
    answer(shell, 3000)
    shell.run_until(1.0)
    shell.tracker.twilio_read(1.0, dated=True)
    assert shell.pause().heard_ms == 1000
    due = shell.tracker.settling_by()
    assert due is not None
    assert due > 1.04  # a round trip (the lead in it), twice the jitter and a frame
    return shell, due


def test_a_cut_waits_for_its_clears_marks_read_late_on_twilios_clock() -> None:
    """A busy server reads the caller's frames, and the marks the clear returns among
    them, 300 ms late. On our clock the marks are overdue; the frames read so far say
    Twilio had not sent them yet: the cut is not settled (a truncation waits). Read at
    last, they move it back to where the caller stopped, as they would have on time."""
    shell, due = _paused_with_the_clear_out()
    tracker = shell.tracker
    tracker.twilio_read(1.03, dated=True)  # read at 1.33
    assert not tracker.cut_settled(1.33)
    assert tracker.settle_deadline() == pytest.approx(due + 1.0)
    for name in shell.player.due_echoes(1.04):  # they came at 1.04, read at 1.34
        tracker.mark_echoed(name, 1.34, 1.04)
    assert tracker.cut_settled(1.34)
    assert tracker.recut_bytes == -100 * 8
    assert tracker.cancel(1.34).truncate == Truncation("i1", 900)


def test_a_cut_whose_clears_marks_are_lost_stands_once_a_later_frame_is_read() -> None:
    """The marks never come back: a frame Twilio sent after they were due says so (it
    sends echoes and frames in order), whatever our clock says; the cut stands."""
    shell, due = _paused_with_the_clear_out()
    tracker = shell.tracker
    shell.player.marks.clear()
    tracker.twilio_read(due - 0.005, dated=True)
    assert not tracker.cut_settled(due + 0.5)
    tracker.twilio_read(due, dated=True)
    assert tracker.cut_settled(due + 0.5)
    assert tracker.settling_by() is None
    assert tracker.cancel(due + 0.5).truncate == Truncation("i1", 1000)


def test_with_no_frame_to_say_so_the_cut_stands_a_while_after_it_was_due() -> None:
    """Frames dated by Twilio's clock stop coming: our clock decides, a second late; with
    frames dated by their reading (no Twilio clock), it decides at once."""
    shell, due = _paused_with_the_clear_out()
    shell.player.marks.clear()
    assert not shell.tracker.cut_settled(due + 0.99)
    assert shell.tracker.cut_settled(due + 1.0)
    shell, due = _paused_with_the_clear_out()
    shell.player.marks.clear()
    shell.tracker.twilio_read(1.0, dated=False)
    assert shell.tracker.settle_deadline() == pytest.approx(due)
    assert not shell.tracker.cut_settled(due - 0.001)
    assert shell.tracker.cut_settled(due)


def test_a_resume_waiting_on_twilios_clock_goes_on_when_a_frame_says_the_marks_are_lost() -> None:
    shell, due = _paused_with_the_clear_out(lead_s=0.0)
    tracker = shell.tracker
    shell.player.marks.clear()
    tracker.resume(1.01)
    assert tracker.resuming_by() == pytest.approx(due)
    assert tracker.settle_deadline() == pytest.approx(due + 1.0)
    tracker.poll(due + 0.2)  # late on our clock, not on Twilio's: still waiting
    assert tracker.held
    tracker.twilio_read(due + 0.001, dated=True)
    tracker.poll(due + 0.2)
    assert not tracker.held
    assert tracker.resuming_by() is None


def test_the_players_own_echo_read_after_a_late_pause_keeps_all_it_heard() -> None:
    """The link's one round-trip sample came 60 ms late (its echo held up once), the
    echoes after it on time: the line follows them, the round trip stays 60 ms long.
    A second answer plays out whole; the server, busy, pauses only after the player ran
    dry, and reads the last mark's own echo, which Twilio sent before the clear left,
    only after the pause. Dated by Twilio's clock it says the player reached the end of
    what was sent: nothing moves (taken for the clear's return, with the long round
    trip, it moved the cut back short of what the caller heard)."""
    shell = Shell(delay_s=0.002, echo_delay_s=0.002, dated_echoes=True)
    tracker = shell.tracker
    answer(shell, 1000, item="i1")
    shell.poll()
    at, name = shell.player.marks[0]
    shell.player.marks[0] = (at + 0.06, name)  # the first echo, held up on the way
    shell.run_until(2.0)
    assert tracker.link.samples == 1
    assert tracker.link.rtt_s == pytest.approx(0.064)
    answer(shell, 300, item="i2", seed=7)
    shell.poll()  # sent at once: played 2.002-2.302, its end echoed at 2.304
    echoes = [(at + 0.002, name) for at, name in shell.player.marks]
    shell.player.marks.clear()  # sent by Twilio, not read yet
    shell.advance(2.5)
    outcome = shell.pause()
    assert outcome.heard_ms == 300
    for arrived, name in echoes:  # read at 2.6, dated when they came
        tracker.mark_echoed(name, 2.6, arrived)
    assert tracker.recut_bytes == 0
    assert tracker.heard_ms("i2", 2.6) == 300


def test_a_clears_return_dated_early_mid_answer_is_not_taken_for_the_players_own() -> None:
    """Twilio sent its frames late, so the clear's return is dated 30 ms before the clear
    left. The cut is mid-answer (the player had 400 ms more): the echo is not the
    player's own at the end of what was sent, and the cut does not jump there."""
    shell = Shell(delay_s=0.002, echo_delay_s=0.002, dated_echoes=True)
    tracker = shell.tracker
    answer(shell, 3000)
    shell.run_until(1.0)
    sent_ms = len(sent(shell)) // 8
    outcome = shell.pause()
    assert outcome.heard_ms < sent_ms - 100
    returned = [name for _, name in shell.player.marks]
    shell.player.marks.clear()
    for name in returned:
        tracker.mark_echoed(name, 1.05, 0.97)
    assert tracker.heard_ms("i1", 1.05) <= outcome.heard_ms
