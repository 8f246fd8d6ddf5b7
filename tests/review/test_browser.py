"""A staff reviewer in headless Chromium: finds the bad call, reads its timeline, cannot edit it.

Screenshots of every page land in `artifacts/` (the CI run keeps them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from callcore.records import RecordKind
from calls.models import CallSession
from tests.review.conftest import (
    GOODBYE_SID,
    goodbye_call,
    new_call,
    transfer_call,
    transfer_cancelled_call,
    with_agent,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CALLS = "/admin/calls/callsession/"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def page(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A logged-in reviewer's page (a machine without Playwright skips these tests)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the tests' own ORM calls
    # (making calls to review) are plain synchronous code all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    User.objects.create_superuser("reviewer", password="pw-for-tests-only")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{live_server.url}/admin/login/?next={CALLS}")
            page.fill("#id_username", "reviewer")
            page.fill("#id_password", "pw-for-tests-only")
            page.click("input[type=submit]")
            page.wait_for_url(f"**{CALLS}")
            yield page
        finally:
            browser.close()


def expect() -> Any:
    return pytest.importorskip("playwright.sync_api").expect


def tail_barge_in_call(sid: str = "CA-tail") -> CallSession:
    """The seed's case: the model finished; 4.3 s still playing; the caller speaks."""
    return (
        new_call(sid)
        .log(RecordKind.STREAM_STARTED, 0)
        .playout("resp_1", 600, 4201)
        .log(RecordKind.RESPONSE_DONE, 1400, response_id="resp_1", status="completed")
        .barge_in(4200, remaining_ms=4300)
        .log(RecordKind.TRUNCATED, 4201, item_id="item_1", audio_end_ms=3000)
        .log(RecordKind.SPEECH_STOPPED, 5600, audio_end_ms=5400)
        .log(RecordKind.STREAM_ENDED, 7000, end_reason="caller_hangup")
        .save()
    )


def interrupted_goodbye_call(sid: str = "CA-goodbye-interrupted") -> CallSession:
    """The AI said goodbye; the caller spoke over it, so the hangup was called off."""
    return (
        new_call(sid)
        .log(RecordKind.STREAM_STARTED, 0)
        .playout("resp_1", 600, 3000)
        .log(RecordKind.END_CALL_REQUESTED, 2000, call_id="fc_1")
        .log(RecordKind.DRAIN_STARTED, 2100, expected_wait_ms=900, pending_ms=900)
        .barge_in(2500, remaining_ms=500)
        .log(RecordKind.HANGUP_CANCELLED, 2501, reason="barge_in")
        .log(RecordKind.SPEECH_STOPPED, 3600, audio_end_ms=3400)
        .log(RecordKind.STREAM_ENDED, 9000, end_reason="caller_hangup")
        .save()
    )


@override_settings(DEBUG=True)  # the live server then serves the admin's static files
def test_the_planted_bad_call_is_found_through_a_filter_in_two_clicks(page: Any) -> None:
    for n in range(60):  # more than a page of clean calls around it
        new_call(f"CA-clean-{n:03d}").barge_in(2000, remaining_ms=3000).save()
    bad = goodbye_call()
    page.reload()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-1-call-list.png"), full_page=True)
    # Every column fits at 1400 px: nothing behind a horizontal scroll.
    results = page.locator("#changelist .results")
    assert results.evaluate("el => el.scrollWidth <= el.clientWidth")

    page.locator("#changelist-filter a", has_text="missed barge-in").first.click()  # click 1
    rows = page.locator("#result_list tbody tr")
    expect()(rows).to_have_count(1)
    expect()(rows.first.locator(".suspect-flag")).to_contain_text("missed barge-in")
    page.screenshot(path=str(ARTIFACTS / "review-2-filtered.png"), full_page=True)
    rows.first.locator("th a").click()  # click 2

    page.wait_for_url(f"**{CALLS}{bad.pk}/change/**")  # the filter rides along
    expect()(page.locator("svg#call-timeline")).to_be_visible()
    expect()(page.locator('svg#call-timeline [data-kind="suspect"]').first).to_be_attached()
    assert GOODBYE_SID in page.content()


@override_settings(DEBUG=True)
def test_a_tail_barge_in_shows_its_onset_dropped_tail_and_truncation_point(page: Any) -> None:
    call = tail_barge_in_call()
    page.goto(page.url.split("/admin/")[0] + f"{CALLS}{call.pk}/change/")
    timeline = page.locator("svg#call-timeline")
    expect()(timeline).to_be_visible()

    speech = timeline.locator('[data-kind="speech"]').first
    assert int(speech.get_attribute("data-onset-ms")) == 4000  # the speech began here...
    assert int(speech.get_attribute("data-decided-ms")) == 4200  # ...and was caught here
    assert int(speech.get_attribute("data-offset-ms")) == 4000  # the bar starts at the onset
    ghost = timeline.locator('[data-kind="ghost"]')
    expect()(ghost).to_have_count(1)
    assert int(ghost.get_attribute("data-dropped-ms")) == 4300  # unplayed 3100 + ours 1200
    clear = timeline.locator('[data-kind="clear"]')
    truncation = timeline.locator('[data-kind="truncation"]')
    expect()(clear).to_have_count(1)
    expect()(truncation).to_have_count(1)
    clear_box, cut_box = clear.bounding_box(), truncation.bounding_box()
    assert clear_box is not None
    assert cut_box is not None
    assert cut_box["x"] < clear_box["x"]  # memory cut where the caller stopped hearing
    expect()(timeline.locator('[data-kind="generation_end"]')).to_have_count(1)
    expect()(page.locator("#timeline-legend")).to_be_visible()
    timeline.screenshot(path=str(ARTIFACTS / "review-3-tail-barge-in-timeline.png"))
    page.screenshot(path=str(ARTIFACTS / "review-3-tail-barge-in-page.png"), full_page=True)


@override_settings(DEBUG=True)
def test_an_interrupted_goodbye_is_drawn_as_cancelled(page: Any) -> None:
    call = interrupted_goodbye_call()
    page.goto(page.url.split("/admin/")[0] + f"{CALLS}{call.pk}/change/")

    drain = page.locator('svg#call-timeline [data-kind="drain"]')
    expect()(drain).to_have_count(1)
    assert drain.get_attribute("data-outcome") == "cancelled"
    page.locator("svg#call-timeline").screenshot(
        path=str(ARTIFACTS / "review-4-interrupted-goodbye.png")
    )


@override_settings(DEBUG=True)
def test_a_call_offers_neither_save_nor_delete(page: Any) -> None:
    call = goodbye_call()
    page.goto(page.url.split("/admin/")[0] + f"{CALLS}{call.pk}/change/")

    expect()(page.locator("svg#call-timeline")).to_be_visible()
    expect()(page.locator('input[name="_save"]')).to_have_count(0)
    expect()(page.locator('input[name="_continue"]')).to_have_count(0)
    expect()(page.locator("a.deletelink")).to_have_count(0)
    assert "Change call session" not in page.content()
    page.screenshot(path=str(ARTIFACTS / "review-5-read-only-call.png"), full_page=True)


@override_settings(DEBUG=True)
def test_a_transferred_call_is_found_by_its_agent_and_shows_its_tools_and_target(
    page: Any,
) -> None:
    for n in range(10):
        with_agent(new_call(f"CA-agent-{n:02d}"), {"name": f"desk-{n % 3}"}).save()
    transfer_cancelled_call()
    call = transfer_call()
    page.reload()
    # The agent under each SID and the transfer under its end reason: still no scrolling.
    results = page.locator("#changelist .results")
    assert results.evaluate("el => el.scrollWidth <= el.clientWidth")
    page.screenshot(path=str(ARTIFACTS / "review-6-agents-list.png"), full_page=True)

    page.locator("#changelist-filter a", has_text="sales-desk").first.click()
    rows = page.locator("#result_list tbody tr")
    expect()(rows).to_have_count(2)
    page.goto(page.url.split("/admin/")[0] + f"{CALLS}{call.pk}/change/")

    expect()(page.locator("#call-transfer")).to_contain_text("Transferred to Sales (+15550003333)")
    timeline = page.locator("svg#call-timeline")
    tools = timeline.locator('[data-kind="tool"]')
    expect()(tools).to_have_count(2)
    lookup, hold = tools.first.bounding_box(), timeline.locator('[data-kind="hold"]').bounding_box()
    transfer = timeline.locator('[data-kind="transfer"]').bounding_box()
    assert lookup is not None
    assert hold is not None
    assert transfer is not None
    assert lookup["x"] < hold["x"] < lookup["x"] + lookup["width"]  # said while it ran
    assert transfer["y"] > lookup["y"]  # the hangup lane, under the tools
    expect()(page.locator(".field-agent_shown .readonly")).to_have_text("sales-desk")
    expect()(page.locator("details.agent-instructions")).not_to_have_attribute("open", "")
    timeline.screenshot(path=str(ARTIFACTS / "review-7-transfer-timeline.png"))
    page.screenshot(path=str(ARTIFACTS / "review-7-transfer-page.png"), full_page=True)
