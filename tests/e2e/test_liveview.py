"""The live view as an operator uses it, in headless Chromium, against the real server.

A call comes in while the page is open: its row shows the caller and links to
the call's page; "End call" ends it from there; the page says when no call is
in progress, and when its socket is down and it is reconnecting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.db import connection

from calls.demo.simulation import database_url
from calls.models import CallSession
from simulators.realtime import RealtimeScript, Reply
from simulators.scenarios import GREETING
from simulators.stack import LocalStack
from simulators.twilio import CallerScript, Silence

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="function"),
]

ENV = {
    "AGENT_GREETING": GREETING,
    # A browser reaches the admin over plain http on localhost (no TLS proxy here).
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_ALLOWED_HOSTS": "localhost,calls.simulated.test",
}


@pytest_asyncio.fixture
async def stack(django_db_setup: Any, django_db_blocker: Any) -> AsyncIterator[LocalStack]:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    async with LocalStack(database_url=url, server="uvicorn", env=ENV) as running:
        yield running


@pytest_asyncio.fixture
async def page(stack: LocalStack) -> AsyncIterator[Any]:
    async_api = pytest.importorskip("playwright.async_api")
    await database_sync_to_async(
        lambda: User.objects.create_superuser("operator", password="pw-for-tests-only")
    )()
    base = stack.local_base_url.replace("127.0.0.1", "localhost")
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page()
            page.on("dialog", lambda dialog: pytest.fail(f"the page alerted: {dialog.message}"))
            await page.goto(f"{base}/admin/login/?next=/admin/calls/callsession/live/")
            await page.fill("#id_username", "operator")
            await page.fill("#id_password", "pw-for-tests-only")
            await page.click("input[type=submit]")
            await page.wait_for_selector("#live[data-state=live]", timeout=10_000)
            yield page
        finally:
            await browser.close()


async def wait_row(call_sid: str, done: Any, timeout_s: float) -> CallSession | None:
    """The call's row once `done(row)`; the server process writes it: poll, bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = await database_sync_to_async(CallSession.objects.filter(call_sid=call_sid).first)()
        if (row is not None and done(row)) or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.05)


async def test_an_operator_sees_the_caller_opens_the_call_and_ends_it(
    stack: LocalStack, page: Any
) -> None:
    assert await page.locator("#live-none").is_visible()  # nothing in progress yet

    stack.queue_script(RealtimeScript(replies=(Reply(600, GREETING),)))
    caller = stack.caller(CallerScript(segments=(Silence(30_000),)), from_number="+15005550123")
    call = asyncio.ensure_future(caller.run(timeout_s=40))
    try:
        await caller.wait_heard(1, 600, timeout_s=15)
        row = page.locator(f'#live-calls tr[data-call="{caller.call_sid}"]')
        await row.wait_for(timeout=5_000)
        assert not await page.locator("#live-none").is_visible()
        assert await row.locator(".caller").inner_text() == "+15005550123"
        stored = await wait_row(caller.call_sid, lambda r: True, 5)
        assert stored is not None
        href = await row.locator(".sid a").get_attribute("href")
        assert href == f"/admin/calls/callsession/{stored.pk}/change/"

        await row.get_by_role("button", name="End call").click()
        timeline = await asyncio.wait_for(call, 10)
    finally:
        await caller.aclose()

    assert timeline.closed_by == "server"
    ended = await wait_row(caller.call_sid, lambda r: r.ended_at is not None, 10)
    assert ended is not None
    assert ended.end_reason == "operator_hangup"
    await row.wait_for(state="detached", timeout=5_000)
    await page.locator("#live-none").wait_for(state="visible", timeout=5_000)

    await stack.stop_server()  # the page's socket drops: it says so, and retries
    await page.wait_for_selector("#live[data-state=reconnecting]", timeout=5_000)
    assert "reconnecting" in await page.locator("#live-state").inner_text()
