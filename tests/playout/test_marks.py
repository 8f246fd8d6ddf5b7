"""Mark echoes as evidence: correcting the estimate both ways, and what is not evidence."""

from __future__ import annotations

from playout import EchoResult, MarkOut, Outbound, PlayoutConfig, PlayoutTracker

from .harness import Shell


def marks(out: list[Outbound]) -> list[str]:
    return [o.name for o in out if isinstance(o, MarkOut)]


#: A link measured as instant, so each echo's lateness is the player's alone.
INSTANT = {"link_rtt_prior_ms": 0, "link_jitter_prior_ms": 0}


def test_late_echoes_move_the_estimate_back_and_the_deadline_forward() -> None:
    """After a clean echo on an instant link, the player falls 100 ms behind the estimate."""
    tracker = PlayoutTracker(PlayoutConfig(lead_ms=1000, **INSTANT))
    tracker.audio_delta("r1", "i1", b"\x10" * (1000 * 8), 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    names = marks(tracker.poll(0.0))  # 1000 ms sent at 0: 10 marks, 100 ms apart
    assert tracker.snapshot(0.0).deadline == 1.0

    first = tracker.mark_echoed(names[0], 0.1)
    assert (first.link_sample, first.estimate_error_ms) == (True, 0)
    late = tracker.mark_echoed(names[2], 0.4)  # due at 0.3: the player stalled 100 ms
    assert (late.link_sample, late.estimate_error_ms) == (False, 100)
    assert tracker.link.rtt_s == 0.0  # a stall is not the link

    # The deadline took the evidence: the last audio ends 100 ms later than first thought.
    assert tracker.playout_remaining_ms(0.5) == 600
    # The heard position follows the player: 400 ms heard at 0.5 s, not 500.
    assert tracker.heard_ms("i1", 0.5) == 400
    assert tracker.heard_ms("i1", 1.2) == 1000


def test_early_echo_moves_heard_forward_but_not_the_deadline_back() -> None:
    tracker = PlayoutTracker(PlayoutConfig(lead_ms=1000, **INSTANT))
    tracker.audio_delta("r1", "i1", b"\x10" * (1000 * 8), 0.0)
    names = marks(tracker.poll(0.0))  # 1000 ms sent at 0: 10 marks, 100 ms apart
    deadline = tracker.snapshot(0.0).deadline
    assert tracker.heard_ms("i1", 0.2) == 200
    # The mark after 500 ms comes back at 0.2 s: the caller is ahead of the estimate.
    echo = tracker.mark_echoed(names[4], 0.2)
    assert echo.accepted
    assert echo.estimate_error_ms == -300
    assert tracker.heard_ms("i1", 0.2) == 500
    assert tracker.heard_ms("i1", 0.3) == 600
    assert tracker.snapshot(0.3).deadline == deadline  # never moves back


def test_behind_echo_holds_heard_position_instead_of_going_back() -> None:
    tracker = PlayoutTracker(PlayoutConfig(lead_ms=1000, **INSTANT))
    tracker.audio_delta("r1", "i1", b"\x10" * (1000 * 8), 0.0)
    names = marks(tracker.poll(0.0))
    before = tracker.heard_ms("i1", 0.5)
    assert before == 500
    # The 300 ms mark echoes only at 0.5 s: the caller is 200 ms behind.
    tracker.mark_echoed(names[2], 0.5)
    assert tracker.heard_ms("i1", 0.5) == 500  # not 300: never backwards
    assert tracker.heard_ms("i1", 0.6) == 500  # held until the evidence catches up
    assert tracker.heard_ms("i1", 0.8) == 600
    assert tracker.playout_remaining_ms(0.5) == 700


def test_marks_returned_by_clear_are_not_evidence() -> None:
    shell = Shell()
    tracker = shell.tracker
    tracker.audio_delta("r1", "i1", b"\x10" * (1000 * 8), 0.0)
    shell.run_until(0.25)
    heard = tracker.heard_ms("i1", 0.25)
    outstanding = tracker.snapshot(0.25).outstanding_marks
    assert outstanding > 0
    shell.cancel()
    cleared = [e for e in shell.echoes if e.result is EchoResult.CLEARED_BY_CANCEL]
    assert len(cleared) == outstanding
    assert tracker.heard_ms("i1", 0.25) == heard  # all those "echoes" changed nothing
    assert tracker.snapshot(0.25).outstanding_marks == 0
    assert tracker.drain_status(0.25).done


def test_unknown_stale_and_duplicate_echoes() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", b"\x10" * (200 * 8), 0.0)
    names = marks(tracker.poll(0.0))
    assert tracker.mark_echoed("someone-else", 0.1).result is EchoResult.UNKNOWN
    assert tracker.mark_echoed(names[0], 0.1).accepted
    assert tracker.mark_echoed(names[0], 0.1).result is EchoResult.UNKNOWN
    tracker.cancel(0.15)
    assert tracker.mark_echoed(names[1], 0.15).result is EchoResult.CLEARED_BY_CANCEL
    assert tracker.mark_echoed("po-g0-999", 0.2).result is EchoResult.STALE_GENERATION
    rejected = tracker.mark_echoed("po-g0-998", 0.2)
    assert (rejected.estimate_error_ms, rejected.round_trip_ms, rejected.response_id) == (
        0,
        0,
        None,
    )


def test_an_echo_settles_earlier_unechoed_marks() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", b"\x10" * (300 * 8), 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    names = marks(tracker.poll(0.0))
    echo = tracker.mark_echoed(names[-1], 0.3)
    assert echo.accepted
    assert (echo.response_id, echo.item_id, echo.position_ms) == ("r1", "i1", 300)
    assert echo.round_trip_ms == 300
    assert tracker.snapshot(0.3).outstanding_marks == 0
    assert tracker.drain_status(0.3).final_mark_echoed


def test_a_stalled_batch_of_echoes_does_not_hold_pacing_back() -> None:
    """Echoes delayed together by a network stall must not leave the caller in silence.

    The stalled echoes arrive late in one batch (in order, as over TCP); the
    last of them is timely again and must bring pacing back to the truth.
    """
    from .harness import EPS, ReferencePlayer

    tracker = PlayoutTracker(PlayoutConfig())
    player = ReferencePlayer()
    tracker.audio_delta("r1", "i1", b"\x10" * (4000 * 8), 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    stall_from, stall_until = 1.0, 1.5
    held: list[str] = []
    now, gaps = 0.0, []
    while now < 4.5:
        for name in player.due_echoes(now):
            if stall_from <= now < stall_until:
                held.append(name)
            else:
                for late in [*held, name]:
                    tracker.mark_echoed(late, now)
                held.clear()
        if now >= stall_until and held:
            for late in held:
                tracker.mark_echoed(late, now)
            held.clear()
        sendable = tracker.next_send_at() is not None
        for out in tracker.poll(now):
            if isinstance(out, MarkOut):
                player.receive_mark(now, out.name)
            else:
                player.receive_frame(now, out)
        step = 0.005
        if sendable and player.play_end + EPS < now + step:
            gaps.append(round(now, 3))
        now = round(now + step, 6)

    assert held == []
    assert tracker.heard_ms("i1", 4.5) == 4000
    assert gaps == [], f"playback ran dry while audio waited, at {gaps[:5]}"


def test_an_echo_dated_before_a_new_run_began_does_not_move_that_run_ahead() -> None:
    """The first answer played out at 0.1; the next began at 0.15, before the first's
    end mark echoed (0.2, a round trip later). The player was dry in between: the echo
    says nothing of the new run, neither of what is heard nor of how far to send."""
    from .harness import EPS

    shell = Shell(delay_s=0.05, echo_delay_s=0.05)
    tracker = shell.tracker
    tracker.audio_delta("r1", "i1", b"\x10" * (100 * 8), 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    shell.run_until(0.15)
    tracker.audio_delta("r2", "i2", b"\x20" * (2000 * 8), 0.15)
    tracker.audio_done("r2", "i2", 0.15)
    shell.run_until(0.25)
    assert [e.position_ms for e in shell.echoes if e.accepted] == [100]
    assert tracker.heard_ms("i2", 0.25) == 100
    shell.run_until(3.0)
    assert shell.max_lead_s <= 0.3 + EPS
    assert shell.gaps == []
