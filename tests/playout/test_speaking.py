"""The speaking truth: the eight behaviours of the original fix, and the 6.3 s tail."""

from __future__ import annotations

import pytest

from playout import NO_PLAYOUT_TS, PlayoutConfig, PlayoutTracker, SpeakingReason

from .harness import Shell

FRAME = 160  # bytes in 20 ms

#: The original fix's numbers: a 250 ms grace on a link taken as instant. The
#: link-aware defaults are tested below and in test_link.py.
ORIGINAL = PlayoutConfig(grace_ms=250, link_rtt_prior_ms=0, link_jitter_prior_ms=0)


def sent_tracker(
    audio_ms: int, at: float = 0.0, config: PlayoutConfig = ORIGINAL
) -> PlayoutTracker:
    """A tracker that received `audio_ms` (<= lead) and sent it all at `at`."""
    tracker = PlayoutTracker(config)
    tracker.response_started("r1", at)
    tracker.audio_delta("r1", "i1", b"\xff" * (audio_ms * 8), at)
    tracker.audio_done("r1", "i1", at)
    tracker.poll(at)
    return tracker


def test_playout_truth_active() -> None:
    tracker = sent_tracker(300)
    assert tracker.is_speaking(0.25)
    assert tracker.speaking_reason(0.25) == SpeakingReason.PLAYOUT
    assert tracker.playout_status(0.1) == "playout_active_200ms"
    assert tracker.playout_remaining_ms(0.1) == 200


def test_playout_truth_expired() -> None:
    tracker = sent_tracker(300)
    tracker.mark_echoed(tracker_marks(tracker)[-1], 0.3)
    # Within the grace after the deadline: still heard; after it: silent.
    assert tracker.is_speaking(0.3 + 0.249)
    assert not tracker.is_speaking(0.3 + 0.251)
    assert tracker.playout_status(1.5) == "playout_ended_1200ms_ago"
    assert tracker.playout_remaining_ms(1.5) == 0


def tracker_marks(tracker: PlayoutTracker) -> list[str]:
    """Names of the marks the tracker would have sent so far (re-polling sends nothing new)."""
    snapshot = tracker.snapshot(0.0)
    return [f"po-g{snapshot.generation}-{n}" for n in range(1, snapshot.outstanding_marks + 1)]


def test_tx_queue_with_recent_audio() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", b"\xff" * 80, 10.0)  # a partial frame: nothing sendable
    assert tracker.poll(10.0) == []
    assert tracker.speaking_reason(10.2) == SpeakingReason.PENDING_AUDIO


def test_tx_queue_with_old_audio() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", b"\xff" * 800, 10.0)  # never polled: nothing sent
    assert tracker.snapshot(11.0).pending_frames == 5
    assert not tracker.is_speaking(11.0)
    assert tracker.playout_status(11.0) == NO_PLAYOUT_TS


def test_legacy_fallback_recent() -> None:
    # Model audio 399 ms ago; its frame is not out yet and the pending-audio grace is over.
    tracker = PlayoutTracker(PlayoutConfig(grace_ms=100))
    tracker.audio_delta("r1", "i1", b"\xff" * 80, 10.0)
    assert tracker.speaking_reason(10.399) == SpeakingReason.RECENT_OUTPUT


def test_legacy_fallback_old() -> None:
    tracker = PlayoutTracker(PlayoutConfig(grace_ms=100))
    tracker.audio_delta("r1", "i1", b"\xff" * 80, 10.0)
    assert not tracker.is_speaking(10.401)
    assert tracker.speaking_reason(10.401) is None


def test_playout_priority_over_legacy() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", b"\xff" * (6000 * 8), 0.0)
    tracker.poll(0.0)
    # Model audio is 1 s old (the fallback says silent); the playout truth says speaking.
    assert tracker.speaking_reason(1.0) == SpeakingReason.PLAYOUT


def test_no_audio_state() -> None:
    tracker = PlayoutTracker()
    assert not tracker.is_speaking(5.0)
    assert tracker.speaking_reason(5.0) is None
    assert tracker.playout_status(5.0) == NO_PLAYOUT_TS
    assert tracker.playout_remaining_ms(5.0) == 0
    assert tracker.deadline_offset_ms(5.0) is None
    assert tracker.next_deadline() is None


def test_tail_of_6300ms_is_still_speaking_2s_later() -> None:
    shell = Shell(ORIGINAL)
    tracker = shell.tracker
    tracker.response_started("r1", 0.0)
    tracker.audio_delta("r1", "i1", b"\x55" * (6300 * 8), 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    tracker.response_done("r1", 0.0)
    shell.run_until(2.0)
    assert tracker.is_speaking(2.0)
    assert tracker.speaking_reason(2.0) == SpeakingReason.PLAYOUT
    assert tracker.playout_status(2.0) == "playout_active_4300ms"
    assert tracker.playout_remaining_ms(2.0) == 4300
    snapshot = tracker.snapshot(2.0)
    # Paced: Twilio holds only the lead, the rest waits with us.
    assert snapshot.unplayed_ms == 300
    assert snapshot.pending_ms == 4000
    shell.run_until(6.3 + 0.25 + 0.01)
    assert not tracker.is_speaking(shell.now)


def test_unechoed_marks_keep_speaking_within_bound() -> None:
    tracker = sent_tracker(100)
    # Deadline 0.1; grace to 0.35; the end mark never echoes.
    assert tracker.speaking_reason(0.5) == SpeakingReason.AWAITING_ECHO
    assert tracker.is_speaking(0.1 + 0.25 + 0.999)
    assert not tracker.is_speaking(0.1 + 0.25 + 1.001)
    assert tracker.next_deadline() is not None


def test_speaking_turns_false_at_a_wakeup_time() -> None:
    """The shell, woken only at next_deadline(), sees speaking turn false on time."""
    tracker = sent_tracker(300)
    tracker.mark_echoed(tracker_marks(tracker)[-1], 0.3)
    wakeups: list[float] = []
    now = 0.3
    while (wake := tracker.next_deadline()) is not None and wake > now:
        wakeups.append(wake)
        now = wake
        tracker.poll(now)
    assert any(abs(w - 0.55) < 1e-9 for w in wakeups)
    assert tracker.is_speaking(0.55 - 1e-9)
    assert not tracker.is_speaking(0.55 + 1e-9)


def test_default_slack_follows_the_assumed_link() -> None:
    """Defaults: 100 ms round trip, 20 ms jitter, 40 ms grace.

    Heard until deadline + one way (50) + grace (40) + 2 x jitter (40) = +130 ms.
    """
    tracker = sent_tracker(300, config=PlayoutConfig())
    # No echo yet: the deadline is the paced 0.3.
    assert tracker.speaking_reason(0.3 + 0.129) == SpeakingReason.PLAYOUT
    # Past the heard slack the end mark is still unechoed: awaiting it until
    # deadline + rtt (100) + margin (80) + echo wait.
    assert tracker.speaking_reason(0.3 + 0.131) == SpeakingReason.AWAITING_ECHO
    assert tracker.is_speaking(0.3 + 0.18 + 0.999)
    assert not tracker.is_speaking(0.3 + 0.18 + 1.001)


def test_an_echo_dates_its_audio_back_by_the_round_trip() -> None:
    tracker = sent_tracker(300, config=PlayoutConfig())
    # The end mark echoes a round trip (100 ms) after its audio played at 0.3.
    tracker.mark_echoed(tracker_marks(tracker)[-1], 0.4)
    assert tracker.snapshot(0.4).deadline == pytest.approx(0.3)
    assert tracker.is_speaking(0.3 + 0.129)
    assert not tracker.is_speaking(0.3 + 0.131)
