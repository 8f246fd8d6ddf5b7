"""The barge-in scenarios over real network delay and jitter, the project served by Uvicorn.

Twilio's media server is across the internet from the app: every message is
late by the link's delay plus jitter, each way, in order. The model must
still be told what the caller heard (±40 ms, plus the link's jitter: the
clear's own trip is that uncertain), and the call must measure its own link
to within 20 ms of the simulated one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from django.db import connection

from calls.demo.simulation import database_url, describe, run_scenario
from simulators.link import LinkProfile
from simulators.scenarios import BY_NAME, GREETING
from simulators.stack import LocalStack

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="module"),
]

LINKS = {
    "local": LinkProfile(0, 0),
    "60ms+40": LinkProfile(delay_ms=60, jitter_ms=40),
    "150ms+40": LinkProfile(delay_ms=150, jitter_ms=40),
}
BARGE_INS = ("barge_in_tail", "barge_in_generating", "barge_in_back_to_back")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(django_db_setup: Any, django_db_blocker: Any) -> AsyncIterator[LocalStack]:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    env = {"AGENT_GREETING": GREETING}
    async with LocalStack(database_url=url, server="uvicorn", env=env) as running:
        yield running


@pytest.mark.parametrize("link", list(LINKS))
@pytest.mark.parametrize("name", BARGE_INS)
async def test_barge_in_truncates_to_what_was_heard_over_the_link(
    stack: LocalStack, name: str, link: str
) -> None:
    result = await run_scenario(stack, BY_NAME[name], link=LINKS[link])

    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert not failed, "\n".join([*failed, "timeline:", *describe(result)])
    assert any(c.name == "heard and cut words" for c in result.checks)


async def test_speech_after_playout_is_not_a_barge_in_over_a_slow_link(
    stack: LocalStack,
) -> None:
    result = await run_scenario(stack, BY_NAME["speech_after_playout"], link=LINKS["150ms+40"])

    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert not failed, "\n".join([*failed, "timeline:", *describe(result)])
