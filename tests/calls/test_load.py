"""A process's load: its loop's lateness, measured on a stepped clock, and who it admits."""

from __future__ import annotations

import asyncio

import pytest

from calls.live.load import Load, LoopLag


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_loop_is_as_late_as_most_of_its_wakes_in_the_last_second() -> None:
    clock = Clock()
    lag = LoopLag(interval_s=0.05, window_s=1.0, clock=clock)
    for k in range(10):
        lag.woke(100.0 + 0.05 * k, 100.0 + 0.05 * k + 0.002)
    lag.woke(100.5, 100.58)  # one wake 80 ms late: a collection, not load
    clock.now = 100.6
    assert lag.recent_ms() == 2
    for k in range(1, 12):  # then late by 70 ms, wake after wake: overloaded
        lag.woke(100.58 + 0.12 * k - 0.07, 100.58 + 0.12 * k)
    clock.now = 100.58 + 0.12 * 11
    assert lag.recent_ms() == 70
    clock.now += 2.0  # nothing for two seconds: no evidence left
    assert lag.recent_ms() == 0
    assert round(lag.worst_s * 1000) == 80


def test_no_measurement_is_no_lateness() -> None:
    assert LoopLag(clock=Clock()).recent_ms() == 0


@pytest.mark.parametrize(
    ("calls", "late_s", "refused"),
    [
        (99, 0.0, None),
        (100, 0.0, "100 calls in progress (limit 100)"),
        (10, 0.06, "event loop 60 ms late (limit 50 ms)"),
        (10, 0.05, None),
    ],
)
def test_a_new_call_is_turned_away_at_the_call_limit_or_a_late_loop(
    calls: int, late_s: float, refused: str | None
) -> None:
    clock = Clock()
    load = Load(max_calls=100, max_lag_ms=50, lag=LoopLag(clock=clock))
    load.lag.woke(100.0, 100.0 + late_s)
    assert load.refusal(calls) == refused
    assert load.refused == (refused is not None)


def test_zero_limits_refuse_nothing() -> None:
    clock = Clock()
    load = Load(max_calls=0, max_lag_ms=0, lag=LoopLag(clock=clock))
    load.lag.woke(100.0, 100.9)
    assert load.refusal(10_000) is None


def test_the_measuring_task_runs_on_the_loop_and_stops() -> None:
    class Watched(LoopLag):
        def __init__(self) -> None:
            super().__init__(interval_s=0.001)
            self.first = asyncio.Event()

        def woke(self, planned: float, now: float) -> None:
            super().woke(planned, now)
            self.first.set()

    async def main() -> bool:
        lag = Watched()
        load = Load(max_calls=0, max_lag_ms=0, lag=lag)
        load.start()
        load.start()  # once
        await asyncio.wait_for(lag.first.wait(), 5)
        await load.aclose()
        return load._task is None

    assert asyncio.run(main())


def test_calls_admitted_count_until_their_stream_comes_or_for_ten_seconds() -> None:
    clock = Clock()
    load = Load(max_calls=3, max_lag_ms=0, lag=LoopLag(clock=clock), clock=clock)
    for call_sid in ("CA1", "CA2", "CA3"):  # a burst: three webhooks before any stream
        assert load.admit(call_sid, streaming=0) is None
    assert load.admit("CA2", streaming=0) is None  # a retry: admitted, counted once
    assert load.admit("CA4", streaming=0) == "3 calls in progress (limit 3)"
    load.joined("CA1")  # it streams now: it counts once, in the roster
    load.joined("CA9")  # a call handed over from another process takes nobody's place
    assert load.admit("CA4", streaming=1) is not None
    load.release("CA3")  # its webhook failed
    load.release("CA3")
    assert load.expected() == 1
    assert load.admit("CA4", streaming=1) is None
    clock.now += 10.5  # CA2 and CA4 never came
    assert load.expected() == 0
    assert load.admit("CA5", streaming=1) is None
    assert load.refused == 2


def test_a_loop_that_just_stalled_longer_than_the_window_is_late() -> None:
    clock = Clock()
    lag = LoopLag(interval_s=0.05, window_s=1.0, clock=clock)
    lag.woke(100.0, 100.001)
    lag._due = 100.05  # the measuring task's next wake, as `run` sets it
    clock.now = 101.6  # stalled 1.5 s: no wake in the window
    assert lag.recent_ms() == 1550
