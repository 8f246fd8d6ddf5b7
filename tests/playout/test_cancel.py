"""Cancel (Twilio clear): what the model is told, and late output of the dead generation."""

from __future__ import annotations

from playout import AudioFrame, CancelOutcome, PlayoutTracker, SpeakingReason, Truncation

from .harness import Shell


def speaking_shell() -> Shell:
    """Response r1: item a (500 ms, done) then item b (1000 ms, still arriving), paced."""
    shell = Shell()
    tracker = shell.tracker
    tracker.response_started("r1", 0.0)
    tracker.audio_delta("r1", "a", b"\x01" * (500 * 8), 0.0)
    tracker.audio_done("r1", "a", 0.0)
    tracker.audio_delta("r1", "b", b"\x02" * (1000 * 8), 0.0)
    tracker.audio_delta("r1", "c", b"\x03" * (200 * 8), 0.0)
    return shell


def test_cancel_truncates_the_heard_item_and_deletes_the_unheard() -> None:
    shell = speaking_shell()
    shell.run_until(0.7)
    outcome = shell.cancel()
    assert isinstance(outcome, CancelOutcome)
    assert outcome.truncate == Truncation("b", 200)
    assert outcome.delete_item_ids == ("c",)
    assert outcome.response_id == "r1"
    assert outcome.cancelled_response_ids == ("r1",)
    assert (outcome.cancelled_generation, outcome.generation) == (0, 1)
    evidence = outcome.evidence
    assert evidence.speaking_reason == SpeakingReason.PLAYOUT
    assert evidence.playout_remaining_ms == 1000  # 200 ms of b sent-unplayed... plus held audio
    assert evidence.unplayed_ms == 300
    assert evidence.pending_ms == 700
    assert outcome.marks_cleared > 0
    tracker = shell.tracker
    assert not tracker.is_speaking(0.7)
    assert tracker.playout_status(0.7) == "no_playout_ts"
    assert tracker.heard_ms("a", 0.7) == 500
    assert tracker.heard_ms("b", 5.0) == 200  # the dropped rest never counts
    assert tracker.snapshot(0.7).pending_frames == 0


def test_item_heard_for_0ms_goes_to_delete() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "a", b"\x01" * 1600, 0.0)
    tracker.poll(0.0)
    outcome = tracker.cancel(0.0)  # sent, not a millisecond heard
    assert outcome.truncate is None
    assert outcome.delete_item_ids == ("a",)


def test_fully_heard_complete_item_needs_nothing() -> None:
    shell = Shell()
    shell.tracker.audio_delta("r1", "a", b"\x01" * 800, 0.0)
    shell.tracker.audio_done("r1", "a", 0.0)
    shell.run_until(0.2)
    outcome = shell.cancel()
    assert outcome.truncate is None
    assert outcome.delete_item_ids == ()


def test_an_answer_still_generating_keeps_its_items_heard_whole_as_part_of_the_cut() -> None:
    """The caller heard item a whole and cut in before the answer's next item: a is
    the heard part of a cut answer; once that answer is done, a finished one is not."""
    for done in (False, True):
        shell = Shell()
        shell.tracker.response_started("r1", 0.0)
        shell.tracker.audio_delta("r1", "a", b"\x01" * 800, 0.0)
        shell.tracker.audio_done("r1", "a", 0.0)
        if done:
            shell.tracker.response_done("r1", 0.0)
        shell.run_until(0.2)
        outcome = shell.cancel()
        assert (outcome.truncate, outcome.delete_item_ids) == (None, ())
        assert outcome.kept_item_ids == (() if done else ("a",))


def test_nothing_known_cancel() -> None:
    outcome = PlayoutTracker().cancel(1.0)
    assert outcome.truncate is None
    assert outcome.delete_item_ids == ()
    assert outcome.response_id is None
    assert outcome.evidence.speaking_reason is None
    assert outcome.generation == 1


def test_late_deltas_frames_and_marks_of_a_cancelled_generation_are_ignored() -> None:
    shell = speaking_shell()
    tracker = shell.tracker
    shell.run_until(0.3)
    shell.cancel()
    # The model keeps sending a little after the cancel.
    assert not tracker.audio_delta("r1", "b", b"\x02" * 800, 0.31)
    assert not tracker.audio_delta("r1", "new-item", b"\x02" * 800, 0.31)
    tracker.audio_done("r1", "b", 0.31)
    tracker.response_done("r1", 0.32)
    shell.run_until(1.0)
    assert all(f.generation == 0 for f in shell.frames)
    assert tracker.snapshot(1.0).pending_ms == 0
    assert not tracker.is_live(0)
    # A new response after the cancel plays in the new generation.
    assert tracker.response_started("r2", 1.0) == 1
    assert tracker.audio_delta("r2", "d", b"\x04" * 1600, 1.0)
    shell.run_until(1.1)
    new = [f for f in shell.frames if f.generation == 1]
    assert [f.item_id for f in new] == ["d"] * 10
    assert tracker.heard_ms("d", 1.1) == 100


def test_delta_of_unannounced_response_is_a_new_live_response() -> None:
    tracker = PlayoutTracker()
    tracker.cancel(0.0)
    assert tracker.audio_delta("never-announced", "x", b"\x01" * 160, 0.1)
    (frame,) = tracker.poll(0.1)
    assert isinstance(frame, AudioFrame)
    assert frame.generation == 1
    assert tracker.response_audio_ms("never-announced") == 20


def test_cancel_resets_the_deadline_then_it_is_monotonic_again() -> None:
    shell = speaking_shell()
    shell.run_until(0.5)
    assert shell.deadline_regressions == []
    shell.cancel()
    shell.tracker.audio_delta("r2", "z", b"\x05" * 800, 0.5)
    shell.run_until(2.0)
    assert shell.deadline_regressions == []


def test_playing_item_and_heard_in_the_recent_past() -> None:
    shell = speaking_shell()
    shell.run_until(0.9)
    tracker = shell.tracker
    assert tracker.playing_item(0.3) == "a"
    assert tracker.heard_ms("a", 0.3) == 300
    assert tracker.playing_item(0.6) == "b"
    assert tracker.heard_ms("b", 0.6) == 100
    assert tracker.playing_item(0.9) == "b"


def several_items_one_response(shell: Shell) -> None:
    """A response of two audio items (newer models): item a's audio (510 ms, not a whole
    number of frames), then item b's, with a's `audio_done` only after b's first delta."""
    tracker = shell.tracker
    tracker.response_started("r1", 0.0)
    tracker.audio_delta("r1", "a", b"\x01" * (510 * 8), 0.0)
    shell.run_until(0.1)
    tracker.audio_delta("r1", "b", b"\x02" * (1000 * 8), 0.1)
    shell.run_until(0.3)
    tracker.audio_done("r1", "a", 0.3)  # late: b is already arriving


def test_the_items_of_one_response_are_heard_back_to_back() -> None:
    shell = Shell()
    several_items_one_response(shell)
    shell.tracker.audio_done("r1", "b", 0.3)
    shell.tracker.response_done("r1", 0.3)
    shell.run_until(3.0)

    assert shell.gaps == []
    assert shell.player.heard_ms("a", 3.0) == 510
    assert shell.player.heard_ms("b", 3.0) == 1000
    # a's end mark went out with its last frame, before any of b: the evidence that a
    # was heard whole comes back as it ends, not somewhere inside b.
    assert ("a", 510) in [(e.item_id, e.position_ms) for e in shell.echoes if e.accepted]


def test_a_barge_in_in_the_second_item_truncates_it_and_keeps_the_first() -> None:
    shell = Shell()
    several_items_one_response(shell)
    shell.run_until(1.0)  # 510 ms of a, then 490 ms of b heard
    outcome = shell.cancel()
    assert outcome.truncate == Truncation("b", 490)
    assert outcome.delete_item_ids == ()


def test_a_barge_in_in_the_first_item_deletes_the_second_never_heard() -> None:
    shell = Shell()
    several_items_one_response(shell)
    outcome = shell.cancel()  # at 0.3 s: into a
    assert outcome.truncate == Truncation("a", 300)
    assert outcome.delete_item_ids == ("b",)
