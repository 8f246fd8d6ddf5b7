"""Two server processes on one database (and one Redis, when REDIS_URL is set), calls on both.

A deploy's SIGTERM hands each of a process's calls over to the other (the
caller hears a gap, the new Realtime session is told the conversation so
far); SIGKILL leaves its calls to be ended by the survivor as `server_lost`;
an operator ends a call held by the other process through the channel layer
(Redis: skipped on the in-memory layer, which cannot cross processes).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from callcore.records import RecordKind
from calls.demo.simulation import database_url, run_scenario
from calls.live.control import request_end
from calls.models import CallSession, PlayoutLog
from simulators.realtime import RealtimeScript, Reply
from simulators.scenarios import BY_NAME, GREETING
from simulators.stack import LocalStack
from simulators.twilio import CallerScript, Silence, SpeakWhenHeard, TwilioCaller

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="function"),
]

ENV = {
    "AGENT_GREETING": GREETING,
    # A browser reaches the admin over plain http on localhost (no TLS proxy here).
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_ALLOWED_HOSTS": "localhost,calls.simulated.test",
    # Liveness on a short beat, so a lost process shows within seconds here.
    "CALL_ALIVE_INTERVAL_S": "0.5",
    "CALL_LOST_AFTER_S": "3",
}
WORDS = ("When do you open on Saturdays?", "And on Sundays?")


@pytest_asyncio.fixture(params=["uvicorn"])
async def stack(
    request: pytest.FixtureRequest, django_db_setup: Any, django_db_blocker: Any
) -> AsyncIterator[LocalStack]:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    async with LocalStack(database_url=url, server=request.param, env=ENV) as running:
        await running.add_server()
        yield running


both_servers = pytest.mark.parametrize("stack", ["uvicorn", "daphne"], indirect=True)


@database_sync_to_async
def call_row(call_sid: str) -> CallSession | None:
    return CallSession.objects.filter(call_sid=call_sid).first()


async def wait_row(call_sid: str, done: Any, timeout_s: float) -> CallSession | None:
    """The call's row once `done(row)`; another process writes it: poll, bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = await call_row(call_sid)
        if (row is not None and done(row)) or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.05)


def conversation() -> RealtimeScript:
    return RealtimeScript(
        replies=(Reply(600, GREETING), Reply(1200, "We open at nine on Saturdays.")),
        caller_words=WORDS,
    )


def move_to(caller: TwilioCaller, stack: LocalStack, index: int) -> None:
    """The load balancer's part: Twilio's next requests land on server `index`."""
    caller.local_base_url = stack.servers[index].local_base_url
    caller.local_stream_base_url = stack.servers[index].local_base_url


@both_servers
async def test_sigterm_hands_the_call_over_with_the_conversation(stack: LocalStack) -> None:
    """The process stopped takes its first call here: its handover is there all the same."""
    stack.queue_script(conversation())
    stack.queue_script(RealtimeScript(response_offset=2, caller_words=WORDS[1:]))
    caller = stack.caller(
        CallerScript(
            segments=(
                SpeakWhenHeard(tone=1, after_ms=700, speech_ms=500),
                # Asked after the handover: the other process's session answers it.
                SpeakWhenHeard(tone=2, after_ms=2500, speech_ms=500),
                Silence(3000),
            ),
            hangup="stop",
        )
    )
    call = asyncio.ensure_future(caller.run(timeout_s=40))
    try:
        await caller.wait_heard(2, 1200, timeout_s=20)  # the answer to the first question
        move_to(caller, stack, 1)
        before = len(stack.realtime.sessions)
        await stack.stop_server()  # SIGTERM to the first process, as a deploy sends it
        timeline = await call
    finally:
        await caller.aclose()

    assert len(timeline.handovers) == 1
    assert timeline.said == []  # a gap, never an apology or a hang-up
    # The second question was answered by the session on the other process,
    # which was told the conversation so far first.
    assert timeline.heard_ms_by_tone().get(3, 0) > 0
    successor = stack.realtime.sessions[before]
    told = [
        (r.event["item"]["role"], r.event["item"]["content"][0]["text"])
        for r in successor.recording.received
        if r.event.get("type") == "conversation.item.create"
    ]
    assert told[:3] == [
        ("assistant", GREETING),
        ("user", WORDS[0]),
        ("assistant", "We open at nine on Saturdays."),
    ]
    row = await wait_row(caller.call_sid, lambda r: r.ended_at is not None, 10)
    assert row is not None
    assert (row.end_reason, row.handovers) == ("caller_hangup", 1)


async def test_sigterm_mid_answer_hands_over_once_the_answer_has_been_heard(
    stack: LocalStack,
) -> None:
    stack.queue_script(
        RealtimeScript(replies=(Reply(600, GREETING), Reply(3000, "Here is a long answer.")))
    )
    caller = stack.caller(
        CallerScript(
            segments=(SpeakWhenHeard(tone=1, after_ms=700, speech_ms=500), Silence(8000)),
            hangup="stop",
        )
    )
    call = asyncio.ensure_future(caller.run(timeout_s=40))
    try:
        await caller.wait_heard(2, 500, timeout_s=20)  # half a second into a 3 s answer
        move_to(caller, stack, 1)
        await stack.stop_server()
        timeline = await call
    finally:
        await caller.aclose()

    # The answer played to its end before the stream was handed over (the grace
    # period is 5 s): nothing of it was cut.
    assert timeline.heard_ms_by_tone().get(2, 0) >= 3000 - 25
    assert len(timeline.handovers) == 1
    assert timeline.said == []
    row = await wait_row(caller.call_sid, lambda r: r.ended_at is not None, 10)
    assert row is not None
    assert (row.end_reason, row.handovers) == ("caller_hangup", 1)


async def test_sigkill_leaves_the_calls_to_the_survivor_as_server_lost(stack: LocalStack) -> None:
    stack.queue_script(RealtimeScript(replies=(Reply(600, GREETING),)))
    stack.queue_script(RealtimeScript(replies=(Reply(600, GREETING),)))
    lost = stack.caller(CallerScript(segments=(Silence(30_000),)), server_index=0)
    kept = stack.caller(CallerScript(segments=(Silence(30_000),)), server_index=1)
    calls = [asyncio.ensure_future(c.run(timeout_s=40)) for c in (lost, kept)]
    try:
        await lost.wait_heard(1, 600, timeout_s=15)
        await kept.wait_heard(1, 600, timeout_s=15)
        killed_at = time.monotonic()
        await stack.kill_server(0)
        row = await wait_row(lost.call_sid, lambda r: r.end_reason == "server_lost", 15)
        reaped_s = time.monotonic() - killed_at
        assert row is not None
        assert row.end_reason == "server_lost"
        # Within CALL_LOST_AFTER_S + CALL_ALIVE_INTERVAL_S (3 + 0.5 s here), with slack
        # for the survivor's own beat.
        assert reaped_s < 3 + 0.5 + 2
        assert row.ended_at is not None
        still = await call_row(kept.call_sid)
        assert still is not None
        assert still.status == "streaming"
    finally:
        for c in (lost, kept):
            await c.aclose()
        for task in calls:
            task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)


@both_servers
async def test_a_survivor_that_never_had_a_call_ends_a_killed_processs_call(
    stack: LocalStack,
) -> None:
    """The beat runs from the process's start, not from its first call."""
    stack.queue_script(RealtimeScript(replies=(Reply(600, GREETING),)))
    lost = stack.caller(CallerScript(segments=(Silence(30_000),)), server_index=0)
    call = asyncio.ensure_future(lost.run(timeout_s=40))
    try:
        await lost.wait_heard(1, 600, timeout_s=15)
        await stack.kill_server(0)
        killed_at = timezone.now()
        row = await wait_row(lost.call_sid, lambda r: r.end_reason == "server_lost", 15)
    finally:
        await lost.aclose()
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
    assert row is not None
    assert row.end_reason == "server_lost"
    # When the survivor ended it (its own record of it), not when this test looked:
    # within CALL_LOST_AFTER_S + CALL_ALIVE_INTERVAL_S (3 + 0.5 s here) of the kill,
    # with a second of slack for the database.
    reaped = await database_sync_to_async(PlayoutLog.objects.get)(
        call=row, kind=RecordKind.STREAM_ENDED
    )
    assert reaped.details["end_reason"] == "server_lost"
    assert (reaped.occurred_at - killed_at).total_seconds() <= 3 + 0.5 + 1
    # The only call there was: the survivor (server 1) never took one.
    assert await database_sync_to_async(CallSession.objects.count)() == 1


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")
async def test_an_operator_ends_a_call_held_by_the_other_process(stack: LocalStack) -> None:
    stack.queue_script(RealtimeScript(replies=(Reply(600, GREETING),)))
    caller = stack.caller(CallerScript(segments=(Silence(30_000),)), server_index=1)
    call = asyncio.ensure_future(caller.run(timeout_s=40))
    try:
        await caller.wait_heard(1, 600, timeout_s=15)
        asked_at = time.monotonic()
        # From this process (a third one): the layer carries it to the holder.
        await database_sync_to_async(async_to_sync(request_end))(caller.call_sid, "test")
        timeline = await call
        ended_s = (timeline.closed_at or 0) - asked_at
    finally:
        await caller.aclose()
    assert timeline.closed_by == "server"
    assert ended_s < 1.0
    assert timeline.said == []  # an operator's hang-up is a hang-up
    row = await wait_row(caller.call_sid, lambda r: r.ended_at is not None, 10)
    assert row is not None
    assert row.end_reason == "operator_hangup"


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin")
async def test_the_live_view_shows_a_barge_in_made_in_the_other_process(
    stack: LocalStack,
) -> None:
    async_api = pytest.importorskip("playwright.async_api")
    await database_sync_to_async(
        lambda: User.objects.create_superuser("operator", password="pw-for-tests-only")
    )()
    admin_url = stack.servers[0].local_base_url.replace("127.0.0.1", "localhost")
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{admin_url}/admin/login/?next=/admin/calls/callsession/live/")
            await page.fill("#id_username", "operator")
            await page.fill("#id_password", "pw-for-tests-only")
            await page.click("input[type=submit]")
            await page.wait_for_selector("#live[data-state=live]", timeout=10_000)
            await page.evaluate(
                """() => new MutationObserver((changes) => {
                    for (const change of changes) for (const li of change.addedNodes)
                        li.dataset.receivedAt = String(Date.now() / 1000);
                }).observe(document.getElementById("live-events"), {childList: true})"""
            )

            # The barge-in happens in a call served by the other process.
            scenario = BY_NAME["barge_in_tail"]
            result = await run_scenario(stack, scenario, server_index=1)
            assert result.barge_ins, "the scenario made no barge-in"

            item = page.locator(f'li[data-kind=barge_in][data-call="{result.call_sid}"]')
            await item.wait_for(timeout=5_000)
            text = await item.inner_text()
            received = float(await item.get_attribute("data-received-at") or 0)
            published = float(await item.get_attribute("data-at") or 0)
        finally:
            await browser.close()
    assert "BARGE-IN" in text
    assert published > 0
    assert received - published < 1.0


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")
async def test_redis_stalled_for_10_s_ends_no_call_and_delays_no_frame(stack: LocalStack) -> None:
    import redis.asyncio as aioredis

    answers = RealtimeScript(
        replies=(Reply(600, GREETING),), default_reply=Reply(2000, "Let me tell you more.")
    )
    stack.queue_script(answers)
    stack.queue_script(RealtimeScript(replies=(Reply(600, GREETING),)))
    talker = stack.caller(
        CallerScript(
            segments=tuple(
                SpeakWhenHeard(
                    tone=tone, after_ms=(600 if tone == 1 else 2000) + 400, speech_ms=500
                )
                for tone in range(1, 6)
            ),
        ),
        server_index=0,
    )
    newcomer = stack.caller(CallerScript(segments=(Silence(3000),), hangup="stop"), server_index=1)
    redis = aioredis.from_url(os.environ["REDIS_URL"])
    talking = asyncio.ensure_future(talker.run(timeout_s=60))
    try:
        await talker.wait_heard(1, 600, timeout_s=15)
        await redis.execute_command("CLIENT", "PAUSE", "10000", "ALL")
        paused_at = time.monotonic()
        # A new call is answered while Redis is away.
        new_call = await newcomer.run(timeout_s=20)
        # The conversation goes on through the stall.
        await talker.wait_heard(5, 2000, timeout_s=30)
        assert time.monotonic() - paused_at >= 10
        # The call's control subscription came back by itself: an operator can end it.
        await request_end(talker.call_sid, "test")
        timeline = await talking
    finally:
        await talker.aclose()
        await newcomer.aclose()
        await redis.execute_command("CLIENT", "UNPAUSE")
        await redis.aclose()

    assert new_call.heard_ms_by_tone().get(1, 0) >= 600 - 25
    assert timeline.underruns == []
    assert new_call.underruns == []
    row = await wait_row(talker.call_sid, lambda r: r.ended_at is not None, 10)
    assert row is not None
    assert row.end_reason == "operator_hangup"
