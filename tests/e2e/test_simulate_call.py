"""`simulate_call` as a user runs it: a scenario over a delayed, jittery link, judged."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from calls.management.commands.simulate_call import serves
from simulators.scenarios import BY_NAME, DEMO
from simulators.stack import REFERENCE, Project

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


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


def test_a_transfer_is_told_and_judged_in_the_printed_story() -> None:
    call_command("seed_shop", stdout=StringIO())
    out = StringIO()
    call_command(
        "simulate_call", "--scenario", "transfer_billing", "--server", "uvicorn", stdout=out
    )
    text = out.getvalue()
    assert "agent 'orders', chosen by the host (hook)" in text
    assert "transfer to billing (+15005550100) asked" in text
    assert "twilio  <Dial>+15005550100</Dial>: the caller is transferred" in text
    assert "ok   Twilio dials billing" in text
    assert "ok   dialled within 300 ms of the final mark's echo" in text
    assert "verdict: PASS" in text


def test_the_demo_leaves_the_shop_scenarios_out_where_the_host_has_no_shop(
    tmp_path: Path,
) -> None:
    """Another host (`make test-host`'s `mysite`) gives no caller the shop's agent."""
    host = Project(tmp_path, "mysite.settings_standins", "mysite.asgi:application")
    kept = [name for name in DEMO if serves(host, BY_NAME[name])]
    assert kept == [
        "barge_in_tail",
        "barge_in_generating",
        "speech_after_playout",
        "goodbye_drain",
        "goodbye_final_mark_lost",
        "backchannel",
        "speakerphone",
        "real_interruption",
    ]
    assert all(serves(REFERENCE, BY_NAME[name]) for name in DEMO)
    assert {"tool_order_status", "tool_slow_courier", "transfer_billing"} <= set(DEMO)


def test_a_negative_delay_is_refused() -> None:
    with pytest.raises(CommandError, match="must be >= 0"):
        call_command("simulate_call", "--scenario", "barge_in_tail", "--delay-ms", "-1")


def test_the_review_commands_the_demo_prints_work_as_printed(tmp_path: Path) -> None:
    """As a new user runs them after `make demo`: each printed `manage.py` line, as it
    stands, from the checkout (a fresh database of its own, as on a fresh clone)."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.dev_settings",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input"], cwd=ROOT, env=env, check=True)
    demo = subprocess.run(
        [*manage, "simulate_call", "--quiet", "--scenario", "goodbye_final_mark_lost"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    printed = [line.strip() for line in demo.splitlines() if " manage.py " in line]
    assert any("createsuperuser" in line for line in printed)
    assert any("--rule drain_before_final_mark" in line for line in printed)
    ran = 0
    for line in printed:
        command = line.split("#")[0].strip()
        if "runserver" in command:  # serves until stopped: check what it would serve
            command = command.replace("runserver", "check")
        if "createsuperuser" in command:  # asks for a password: given the way Django takes it
            command += " --no-input --username reviewer --email reviewer@example.com"
        run_env = {**env, "DJANGO_SUPERUSER_PASSWORD": "pw-review-1"}
        # The printed line names its settings itself: the environment's must not be needed.
        run_env.pop("DJANGO_SETTINGS_MODULE")
        done = subprocess.run(
            command, shell=True, cwd=ROOT, env=run_env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{line!r} failed: {done.stderr[-800:]}"
        ran += 1
    assert ran >= 4
