"""`simulate_call` as a user runs it: a scenario over a delayed, jittery link, judged."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_scenario_over_a_slow_link_passes_and_says_what_the_link_was() -> None:
    out = StringIO()
    call_command(
        "simulate_call",
        "--scenario",
        "barge_in_tail",
        "--server",
        "uvicorn",
        "--delay-ms",
        "150",
        "--jitter-ms",
        "40",
        stdout=out,
    )
    text = out.getvalue()
    assert "verdict: PASS" in text
    assert "ok   truncated to what was heard (±80 ms)" in text
    assert "ok   round trip measured (±20 ms)" in text
    assert "ok   heard and cut words" in text
    assert "link measured: round trip p50" in text


def test_a_negative_delay_is_refused() -> None:
    with pytest.raises(CommandError, match="must be >= 0"):
        call_command("simulate_call", "--scenario", "barge_in_tail", "--delay-ms", "-1")
