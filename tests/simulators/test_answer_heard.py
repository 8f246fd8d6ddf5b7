"""Where the caller was in each answer: positions read from played audio, and the query on them."""

from __future__ import annotations

import pytest

from simulators import mulaw, position, signals
from simulators.twilio import HeardSegment, Timeline
from simulators.twilio.playback import Playback


def play(timeline: Timeline, tone: int, at: float, from_ms: int, to_ms: int) -> float:
    """The caller hears `tone`'s item from `from_ms` to `to_ms` in 20 ms frames from `at`."""
    for ms in range(from_ms, to_ms, 20):
        length_s = min(20, to_ms - ms) / 1000
        timeline.add_heard(HeardSegment(at, at + length_s, tone, ms * signals.BYTES_PER_MS))
        at += length_s
    return at


def test_a_pause_and_a_resume_where_the_caller_left_off_is_in_order() -> None:
    timeline = Timeline()
    paused_at = play(timeline, 1, 1.0, 0, 500)
    timeline.add_heard(HeardSegment(paused_at, paused_at + 0.02, signals.SILENCE))
    play(timeline, 2, 1.6, 0, 100)  # another answer's audio does not count
    play(timeline, 1, 1.8, 500, 1000)

    answer = timeline.answer_heard(1)

    assert answer.heard_ms == 1000
    assert answer.last_position_ms == 1000
    assert answer.in_order
    assert answer.repeated_ms == 0
    assert answer.skipped_ms == 0
    assert answer.gaps_ms == [pytest.approx(300)]
    assert answer.gap_total_ms == pytest.approx(300)
    assert answer.first_heard_at == 1.0
    assert answer.last_heard_at == pytest.approx(2.3)


def test_a_skip_and_a_repeat_are_measured_and_out_of_order() -> None:
    timeline = Timeline()
    at = play(timeline, 1, 0.0, 0, 400)
    at = play(timeline, 1, at, 600, 800)  # 200 ms never heard
    play(timeline, 1, at, 700, 900)  # 100 ms heard again

    answer = timeline.answer_heard(1)

    assert not answer.in_order
    assert answer.heard_ms == 700
    assert answer.skipped_ms == 200
    assert answer.repeated_ms == 100
    assert answer.last_position_ms == 900
    assert answer.gaps_ms == []
    assert answer.gap_total_ms == 0


def test_within_40_ms_of_where_the_caller_left_off_is_still_in_order() -> None:
    timeline = Timeline()
    play(timeline, 1, 0.0, 0, 300)
    play(timeline, 1, 0.5, 260, 400)  # resumed 40 ms back
    assert timeline.answer_heard(1).in_order
    assert timeline.answer_heard(1).repeated_ms == 40
    play(timeline, 1, 1.0, 441, 500)  # 41 ms ahead
    assert not timeline.answer_heard(1).in_order


def test_an_answer_heard_from_past_its_start_skipped_its_start() -> None:
    timeline = Timeline()
    play(timeline, 1, 0.0, 100, 300)

    answer = timeline.answer_heard(1)

    assert not answer.in_order
    assert answer.skipped_ms == 100
    assert answer.heard_ms == 200


def test_unreadable_frames_count_only_in_time_and_short_gaps_can_be_ignored() -> None:
    timeline = Timeline()
    at = play(timeline, 1, 0.0, 0, 100)
    timeline.add_heard(HeardSegment(at, at + 0.02, 1, None))
    play(timeline, 1, at + 0.0205, 120, 200)  # half a millisecond dry

    answer = timeline.answer_heard(1)
    assert answer.heard_ms == 180
    assert answer.in_order  # the unread frame is passed over, the next compared to 100 ms
    assert answer.skipped_ms == 20
    assert answer.gaps_ms == [pytest.approx(0.5)]
    assert answer.last_heard_at == pytest.approx(0.2005)
    assert timeline.answer_heard(1, min_gap_ms=1.0).gaps_ms == []

    nothing = timeline.answer_heard(9)
    assert (nothing.heard_ms, nothing.last_position_ms, nothing.in_order) == (0, None, True)
    assert (nothing.first_heard_at, nothing.last_heard_at, nothing.gaps_ms) == (None, None, [])


def test_playback_reads_positions_of_re_framed_audio_paused_and_resumed_mid_frame() -> None:
    resume = 2400 - 37  # the bridge resumes 37 samples before where it paused
    total = resume + 25 * 160
    item = position.stamp(signals.tone_audio(1, 0, total, total), 0)
    playback = Playback(Timeline())
    for i in range(0, 2400, 160):  # 300 ms from t=0, then nothing until 0.5
        playback.enqueue(item[i : i + 160], 0.0)
    playback.advance(0.5)
    for i in range(resume, total, 160):
        playback.enqueue(item[i : i + 160], 0.5)
    playback.advance(2.0)

    timeline = playback.timeline
    heard = [s.position for s in timeline.heard if s.tone == 1]
    assert heard == [*range(0, 2400, 160), *range(resume, total, 160)]
    answer = timeline.answer_heard(1)
    assert answer.in_order
    assert answer.heard_ms == total / 8
    assert answer.repeated_ms == 37 / 8
    assert answer.skipped_ms == 0
    assert answer.gaps_ms == [pytest.approx(200)]
    assert answer.last_position_ms == total / 8


def test_played_gives_exactly_the_samples_that_played_then() -> None:
    payload = position.stamp(signals.tone_audio(2, 0, 1600, 1600), 0)
    playback = Playback(Timeline(), history_ms=1000)
    playback.enqueue(payload, 1.0)
    playback.advance(1.1)

    assert playback.played(1.04, 160) == payload[320:480]
    assert playback.played(0.99, 160) == mulaw.silence(80) + payload[:80]
    # Not yet played at 1.1 (a clear may still drop it): silence so far.
    assert playback.played(1.09, 160) == payload[720:800] + mulaw.silence(80)

    playback.clear(1.15)
    assert playback.played(1.14, 160) == payload[1120:1200] + mulaw.silence(80)
    cut = playback.timeline.heard[-1]
    assert cut.position == 1120
    assert cut.ms == pytest.approx(10)
    assert playback.timeline.answer_heard(2).heard_ms == 150

    playback.advance(2.2)  # more than a second later: forgotten
    assert playback.played(1.04, 160) == mulaw.silence(160)
