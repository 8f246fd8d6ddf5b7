"""Drain before hangup: done when the final mark echoes, or at the safety deadline."""

from __future__ import annotations

from playout import PlayoutTracker

from .harness import Shell


def goodbye(shell: Shell) -> None:
    tracker = shell.tracker
    tracker.response_started("r1", 0.0)
    tracker.audio_delta("r1", "bye", b"\x07" * (1000 * 8), 0.0)
    tracker.audio_done("r1", "bye", 0.0)
    tracker.response_done("r1", 0.0)


def test_drain_done_when_the_final_mark_echoes() -> None:
    shell = Shell()
    goodbye(shell)
    shell.poll()
    status = shell.tracker.drain_status(0.0)
    assert not status.done
    assert status.expected_wait_ms == 1000
    # The final echo is due a round trip (100 ms prior) + grace (40) + 2 x jitter (40)
    # after the deadline; the drain margin (400) on top.
    assert status.safety_wait_ms == 1000 + 180 + 400
    shell.run_until(0.999)
    assert not shell.tracker.drain_status(0.999).done
    shell.run_until(1.0)
    status = shell.tracker.drain_status(1.0)
    assert status.final_mark_echoed
    assert status.done
    assert status.pending_bytes == 0


def test_drain_without_echoes_is_done_at_the_safety_deadline_not_before() -> None:
    shell = Shell()
    goodbye(shell)
    tracker = shell.tracker
    now = 0.0
    # The shell paces but Twilio never echoes.
    while now < 1.0:
        tracker.poll(now)
        wake = tracker.next_deadline()
        assert wake is not None
        now = wake
    status = tracker.drain_status(1.579)
    assert status.deadline is not None
    assert abs(status.deadline - 1.0) < 1e-9
    assert not status.final_mark_echoed
    assert not status.done
    assert tracker.drain_status(1.58).done
    wakeups: list[float] = []
    while (wake := tracker.next_deadline()) is not None and len(wakeups) < 10:
        wakeups.append(wake)
        tracker.poll(wake)
    assert any(abs(w - 1.58) < 1e-9 for w in wakeups)


def test_drain_waits_for_open_item_audio() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", b"\x07" * 160, 0.0)
    tracker.poll(0.0)
    assert not tracker.drain_status(10.0).done  # the item's audio may go on
    tracker.response_done("r1", 10.0)
    tracker.poll(10.0)
    assert tracker.drain_status(10.0).done  # past the safety deadline
    assert tracker.drain_status(10.0).open_items == 0


def test_drain_with_nothing_sent_is_done() -> None:
    status = PlayoutTracker().drain_status(0.0)
    assert status.done
    assert status.deadline is None
    assert status.final_mark_echoed
