"""Caller sounds in the admin: the call page's lane, pauses and list in words, and the two
findings they raise, stored, filtered and flagged like every other."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from calls.models import CallSession
from tests.review.conftest import GOODBYE_SID, SOUNDS_SID, goodbye_call, new_call, sounds_call

pytestmark = pytest.mark.django_db

CALLS = "/admin/calls/callsession/"


def test_the_call_page_draws_the_sounds_and_pauses_and_tells_them_in_words(
    staff_client: Client,
) -> None:
    call = sounds_call()

    body = staff_client.get(f"{CALLS}{call.pk}/change/").content.decode()

    assert '<g class="tl-lane-row" data-lane="sounds">' in body
    assert body.count('data-kind="verdict" data-offset-ms=') == 4  # the bars; the list aside
    for verdict in ("backchannel", "noise", "echo", "interruption"):
        assert f'class="tl-verdict tl-verdict--{verdict}"' in body
    assert 'data-kind="verdict" data-offset-ms="1250" data-end-ms="2450"' in body
    assert 'data-kind="pause" data-offset-ms="2000" data-end-ms="2450"' in body
    assert 'data-outcome="resumed" data-gap-ms="420"' in body
    assert 'data-kind="pause" data-offset-ms="6100" data-end-ms="6400"' in body
    listed = re.search(r'<ol id="timeline-sounds"[^>]*>(.*?)</ol>', body, re.S)
    assert listed is not None
    items = re.findall(r"<li ([^>]*)>(.*?)</li>", listed[1], re.S)
    assert [attributes for attributes, _ in items] == [
        'data-kind="verdict" data-variant="backchannel"',
        'data-kind="pause" data-variant="resumed"',
        'data-kind="verdict" data-variant="noise"',
        'data-kind="verdict" data-variant="echo"',
        'data-kind="verdict" data-variant="interruption"',
        'data-kind="pause" data-variant="interrupted"',
    ]
    first = items[0][1]
    assert '<a href="#tl-verdict-1">1.250 s</a>' in first
    assert (
        "Caller said “uh-huh” (360 ms): backchannel, by its words, decided 1.2 s after they "
        "began; the answer was paused meanwhile, then went on"
    ) in first
    assert "resumed at 2.450 s: the caller heard 420 ms of silence" in items[1][1]
    assert "the caller stopped hearing it 600 ms after they began" in items[4][1]
    assert 'data-rule="late_interruption"' in body
    assert 'data-rule="long_resume_gap"' in body
    assert "interruption heard late" in body
    assert "long gap in an answer" in body


def test_a_call_without_sounds_has_no_sounds_lane_or_list(staff_client: Client) -> None:
    call = goodbye_call()

    body = staff_client.get(f"{CALLS}{call.pk}/change/").content.decode()

    assert 'data-lane="sounds"' not in body
    assert 'id="timeline-sounds"' not in body


def test_the_findings_are_stored_filtered_and_flagged(staff_client: Client) -> None:
    call = sounds_call()
    goodbye_call()
    gap_only = (
        new_call("CA-gap-only")
        .pause(1000, heard_ms=800)
        .verdict(1500, "noise", "no_words", 500, paused=True)
        .resume(1500, gap_ms=510)
        .save()
    )

    late = staff_client.get(CALLS, {"finding": "late_interruption"})
    gap = staff_client.get(CALLS, {"finding": "long_resume_gap"})
    flagged = staff_client.get(CALLS, {"finding": "any"})

    assert call.suspects == "late_interruption,long_resume_gap"
    assert sorted(call.findings.values_list("rule", "offset_ms")) == [
        ("late_interruption", 6400),
        ("long_resume_gap", 2450),
    ]
    assert gap_only.suspects == "long_resume_gap"
    assert [row.call_sid for row in late.context["cl"].result_list] == [SOUNDS_SID]
    assert {row.call_sid for row in gap.context["cl"].result_list} == {SOUNDS_SID, "CA-gap-only"}
    assert {row.call_sid for row in flagged.context["cl"].result_list} == {
        SOUNDS_SID,
        GOODBYE_SID,
        "CA-gap-only",
    }
    choices = late.content.decode()
    assert "?finding=late_interruption" in choices
    assert "interruption heard late" in choices
    assert "interruption heard late · long gap in an answer" in choices
    assert CallSession.objects.get(call_sid="CA-gap-only").suspect_count == 1
