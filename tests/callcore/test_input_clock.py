"""Mapping the model's input-audio milliseconds back to arrival times."""

from __future__ import annotations

import pytest

from callcore.input_clock import InputClock


def test_position_maps_to_the_capture_time_within_its_chunk() -> None:
    clock = InputClock()
    for i in range(10):  # 20 ms chunks arriving every 20 ms from t=1.02
        clock.record(160, 1.0 + 0.02 * (i + 1))

    assert clock.input_ms == 200
    # Position 50 ms lies in the third chunk (40-60 ms), which arrived at 1.06.
    assert clock.arrival_of(50) == pytest.approx(1.05)
    assert clock.arrival_of(0) == pytest.approx(1.0)


def test_unknown_positions() -> None:
    clock = InputClock(horizon_ms=100)
    assert clock.arrival_of(0) is None
    for i in range(20):
        clock.record(160, float(i))
    assert clock.arrival_of(400) is None  # not received yet
    assert clock.arrival_of(0) is None  # beyond the horizon
    assert clock.arrival_of(390) is not None
