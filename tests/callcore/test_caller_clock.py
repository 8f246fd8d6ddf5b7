"""Twilio's media clock read on ours: a late server dates what it reads by when it came."""

from __future__ import annotations

import pytest

from callcore.caller_clock import CallerClock

FRAME = 0.02


def feed(clock: CallerClock, start_ms: int, count: int, read_at: list[float]) -> list[float]:
    """Frames `start_ms`, +20, ... read at the given times; their on-time arrivals."""
    return [clock.frame(start_ms + 20 * k, FRAME, read_at[k]) for k in range(count)]


def test_frames_read_as_they_come_are_on_time_and_so_is_what_follows_them() -> None:
    clock = CallerClock()
    reads = [10.0 + 0.02 * k for k in range(50)]
    assert feed(clock, 120, 50, reads) == pytest.approx(reads)
    assert clock.dated(reads[-1] + 0.015) == pytest.approx(reads[-1] + 0.015)
    late = clock.lateness()
    assert (late.frames, late.p95_ms, late.max_ms, late.over_20ms) == (50, 0, 0, 0)
    assert clock.offset_change() == 0.0


def test_a_busy_loop_reads_a_burst_late_and_the_clock_dates_it_back() -> None:
    clock = CallerClock()
    feed(clock, 120, 20, [10.0 + 0.02 * k for k in range(20)])
    # The loop stalls: the next five frames (and an echo after the last) are read
    # together at 10.57, the last of them 90 ms late.
    on_time = feed(clock, 520, 5, [10.57] * 5)
    assert on_time == pytest.approx([10.4, 10.42, 10.44, 10.46, 10.48])
    # The echo came between the last frame and the next (due at 10.50): its middle.
    assert clock.dated(10.575) == pytest.approx(10.49)
    late = clock.lateness()
    assert late.max_ms == 170
    assert late.over_20ms == 5


def test_after_a_gap_in_the_frames_an_echo_is_dated_back_no_more_than_the_last_was_late() -> None:
    """Twilio may send no frames for a while: an echo read then may have come at any time
    since the last frame, which was read on time: it is dated by its read."""
    clock = CallerClock()
    feed(clock, 120, 20, [10.0 + 0.02 * k for k in range(20)])
    assert clock.dated(11.4) == pytest.approx(11.4)
    # Frames again, after a second of none: the same clock.
    assert clock.frame(1540, FRAME, 11.42) == pytest.approx(11.42)
    assert clock.offset_change() == 0.0


def test_frames_that_were_all_late_are_found_late_once_one_comes_on_time() -> None:
    """At a call's start every frame may be read late: what was dated by them moves
    back once a frame read on time shows it (the link's round trips with it)."""
    clock = CallerClock()
    feed(clock, 120, 10, [10.1 + 0.02 * k for k in range(10)])  # 100 ms late, all of them
    assert clock.offset_change() == 0.0
    clock.frame(320, FRAME, 10.2)  # on time at last
    assert clock.offset_change() == pytest.approx(-0.1)
    assert clock.offset_change() == 0.0  # reported once


@pytest.mark.parametrize(
    "stamps",
    [
        [0] * 20,  # no clock at all (as the tests' harness sends)
        [100, 120, 140, 60, 80, 100, 5000, 5020] + [5040 + 20 * k for k in range(12)],
        [10**15] * 20,
        [-20 * k for k in range(20)],
    ],
)
def test_timestamps_that_are_no_clock_date_everything_when_it_is_read(
    stamps: list[int],
) -> None:
    clock = CallerClock()
    reads = [10.0 + 0.02 * k for k in range(len(stamps))]
    for stamp, read in zip(stamps, reads, strict=True):
        assert clock.frame(stamp, FRAME, read) <= read
        assert clock.dated(read) == read
    assert clock.lateness().max_ms == 0


def test_a_stall_is_lateness_but_a_frame_later_than_any_stall_restarts_the_clock() -> None:
    clock = CallerClock()
    feed(clock, 120, 10, [10.0 + 0.02 * k for k in range(10)])
    assert clock.frame(320, FRAME, 12.0) == pytest.approx(10.2)  # read 1.8 s late
    assert clock.frame(340, FRAME, 18.0) == 18.0  # 7.8 s: a fault, not lateness
    assert clock.frame(360, FRAME, 18.02) == pytest.approx(18.02)
    assert clock.offset_change() == 0.0  # what a restart learns moves nothing before it


def test_the_clock_dates_once_ten_frames_in_a_row_kept_to_it() -> None:
    """Until then its least offset may still hold the uplink's jitter: what it dates is
    no better than the read (`PlayoutTracker` then allows for that jitter)."""
    clock = CallerClock()
    feed(clock, 120, 10, [10.0 + 0.02 * k for k in range(10)])
    assert not clock.dating  # the first frame starts the clock; nine more kept to it
    clock.frame(320, FRAME, 10.2)
    assert clock.dating
    clock.frame(320, FRAME, 10.22)  # constant: no clock
    assert not clock.dating
    for _ in range(5):
        clock.frame(0, FRAME, 10.24)
    assert not clock.dating


def test_the_loops_recent_lateness_is_the_most_a_frame_was_late_in_the_last_second() -> None:
    clock = CallerClock()
    assert clock.recent_lateness_s == 0.0
    feed(clock, 120, 20, [10.0 + 0.02 * k for k in range(20)])
    assert clock.recent_lateness_s == pytest.approx(0.0)
    feed(clock, 520, 5, [10.57] * 5)  # a stall: the first of them read 170 ms late
    assert clock.recent_lateness_s == pytest.approx(0.17)
    # A second and more of frames read as they come: the stall is no longer recent.
    feed(clock, 700, 60, [10.58 + 0.02 * k for k in range(60)])
    assert clock.recent_lateness_s == pytest.approx(0.0)
