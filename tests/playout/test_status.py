"""Status strings and configuration validation."""

from __future__ import annotations

import pytest

from playout import NO_PLAYOUT_TS, PlayoutConfig, format_playout_status, parse_playout_status


@pytest.mark.parametrize(
    ("offset", "text"),
    [
        (None, NO_PLAYOUT_TS),
        (4300, "playout_active_4300ms"),
        (1, "playout_active_1ms"),
        (0, "playout_ended_0ms_ago"),
        (-1200, "playout_ended_1200ms_ago"),
    ],
)
def test_status_round_trip(offset: int | None, text: str) -> None:
    assert format_playout_status(offset) == text
    assert parse_playout_status(text) == offset


def test_parse_rejects_other_strings() -> None:
    with pytest.raises(ValueError, match="not a playout status"):
        parse_playout_status("playout_active_-3ms")


def test_config_defaults() -> None:
    config = PlayoutConfig()
    assert (config.frame_ms, config.grace_ms, config.lead_ms) == (20, 40, 300)
    assert (config.mark_interval_ms, config.recent_output_ms) == (100, 400)
    assert (config.held_audio_ms, config.refill_ms) == (250, 100)
    assert (config.link_rtt_prior_ms, config.link_jitter_prior_ms) == (100, 20)
    assert (config.echo_wait_ms, config.drain_margin_ms) == (1000, 400)
    assert config.frame_bytes == 160


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lead_ms": 10},
        {"refill_ms": 10},
        {"refill_ms": 400},
        {"frame_ms": 0},
        {"grace_ms": -1},
        {"mark_interval_ms": 0},
        {"grace_ms": 2.5},
        {"echo_wait_ms": True},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="PlayoutConfig"):
        PlayoutConfig(**kwargs)  # type: ignore[arg-type]
