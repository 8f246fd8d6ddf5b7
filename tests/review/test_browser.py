"""A staff reviewer, in headless Chromium, finds a call's barge-in on its timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from tests.review.conftest import GOODBYE_SID, goodbye_call, new_call

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

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]


@pytest.mark.django_db(transaction=True)
@override_settings(DEBUG=True)  # the live server then serves the admin's static files
def test_reviewer_sees_the_barge_in_on_the_timeline(live_server: Any) -> None:
    # A machine without Playwright skips this test (and still collects the suite).
    sync_api = pytest.importorskip("playwright.sync_api")
    expect, sync_playwright = sync_api.expect, sync_api.sync_playwright

    User.objects.create_user("reviewer", password="pw-for-tests-only", is_staff=True)
    User.objects.filter(username="reviewer").update(is_superuser=True)
    call = goodbye_call()
    new_call("CA-clean").barge_in(2000, remaining_ms=3000).save()
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{live_server.url}/admin/login/?next=/admin/calls/callsession/")
            page.fill("#id_username", "reviewer")
            page.fill("#id_password", "pw-for-tests-only")
            page.click("input[type=submit]")

            row = page.locator("#result_list tr", has_text=GOODBYE_SID)
            expect(row.locator(".suspect-flag")).to_contain_text("missed barge-in")
            page.screenshot(path=str(ARTIFACTS / "review-call-list.png"), full_page=True)
            row.locator("th a").click()

            page.wait_for_url(f"**/admin/calls/callsession/{call.pk}/change/")
            timeline = page.locator("svg#call-timeline")
            expect(timeline).to_be_visible()
            marker = timeline.locator('[data-kind="barge_in"]')
            expect(marker).to_have_count(1)
            expect(marker.locator("text")).to_have_text("barge-in 4300 ms left")
            assert "playout_remaining_ms=4300" in marker.locator("title").text_content()
            box = marker.locator("line").bounding_box()
            assert box is not None
            assert box["height"] > 50  # drawn across the lanes, not collapsed
            expect(timeline.locator('[data-kind="playout"]')).to_have_count(3)
            timeline.screenshot(path=str(ARTIFACTS / "review-call-timeline.png"))
            page.screenshot(path=str(ARTIFACTS / "review-call-detail.png"))
        finally:
            browser.close()
