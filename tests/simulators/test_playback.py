"""The stand-in phone's playback, stepped by hand: marks are never lost between timers."""

from __future__ import annotations

from simulators import signals
from simulators.twilio.playback import Playback
from simulators.twilio.timeline import Timeline


def tone_frame(tone: int) -> bytes:
    """One 20 ms frame of the tone."""
    return signals.tone_audio(tone, 0, signals.FRAME_BYTES, signals.FRAME_BYTES)


def test_a_mark_that_came_due_before_the_next_frame_is_still_handed_out() -> None:
    playback = Playback(Timeline())
    playback.enqueue(tone_frame(1) * 5, 0.0)  # 100 ms
    playback.add_mark("m1", 0.0)
    # The mark's timer is late; the next frame arrives first.
    playback.enqueue(tone_frame(1), 0.15)
    playback.add_mark("m2", 0.15)

    due = playback.advance(0.15)

    assert [m.name for m in due] == ["m1"]
    assert [m.name for m in playback.advance(0.17)] == ["m2"]


def test_marks_wait_for_their_audio() -> None:
    playback = Playback(Timeline())
    playback.enqueue(tone_frame(2) * 10, 1.0)  # 200 ms from 1.0
    record = playback.add_mark("end", 1.0)

    assert abs(record.due_at - 1.2) < 1e-9
    assert playback.advance(1.199) == []
    assert [m.name for m in playback.advance(1.2)] == ["end"]
