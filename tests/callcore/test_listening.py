"""The caller's side of the turn: how much Twilio may hold for a sound's hold to be in time."""

from __future__ import annotations

import pytest

from callcore.listening import Listener
from callcore.turns import TurnPolicy
from playout import PlayoutConfig, PlayoutTracker


def tracker(rtt_ms: int, jitter_ms: int) -> PlayoutTracker:
    return PlayoutTracker(PlayoutConfig(link_rtt_prior_ms=rtt_ms, link_jitter_prior_ms=jitter_ms))


def test_the_lead_is_what_plays_by_the_hold_once_the_onsets_frame_is_read() -> None:
    """Stop target 450 ms, the hold 10 ms before it; the onset's frame read a round trip
    (140), a frame (20) and the link's spread (2 x 20) after the caller began; the hold's
    room (2 x 20): Twilio may hold 200 ms."""
    listener = Listener(TurnPolicy(), frame_ms=20)
    lead = listener.lead_for_holds(tracker(140, 20), dated=True, late_s=0.0)
    assert lead == pytest.approx(0.45 - 0.01 - 0.14 - 0.02 - 0.04 - 0.04)
    # Undated frames: the hold's `until` is a jitter earlier, and so is the lead.
    undated = listener.lead_for_holds(tracker(140, 20), dated=False, late_s=0.0)
    assert undated == pytest.approx(lead - 0.02)
    # Our loop late by 10 ms lately: 10 ms less.
    late = listener.lead_for_holds(tracker(140, 20), dated=True, late_s=0.01)
    assert late == pytest.approx(lead - 0.01)
    # The agent's own stop target moves it.
    later = Listener(TurnPolicy(stop_target_ms=600), frame_ms=20)
    assert later.lead_for_holds(tracker(140, 20), dated=True, late_s=0.0) == pytest.approx(
        lead + 0.15
    )


def test_no_lead_is_kept_short_when_pacing_could_not_keep_the_player_fed() -> None:
    listener = Listener(TurnPolicy(), frame_ms=20)
    # A long link: no lead short enough leaves pacing 80 ms to top it up in.
    assert listener.lead_for_holds(tracker(300, 20), dated=True, late_s=0.0) is None
    # A loop 60 ms late lately: 220 ms, topped up from 110, which covers 80 ms but not
    # twice the lateness.
    assert listener.lead_for_holds(tracker(100, 10), dated=True, late_s=0.06) is None
    # 50 ms late: 230 ms, topped up from 115 (twice 50, and 80, fit).
    short = listener.lead_for_holds(tracker(100, 10), dated=True, late_s=0.05)
    assert short == pytest.approx(0.44 - 0.1 - 0.02 - 0.02 - 0.05 - 0.02)
