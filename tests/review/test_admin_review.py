"""The admin review pages: the call's timeline picture and the list's suspect flag."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from calls.models import CallSession
from tests.review.conftest import GOODBYE_SID, goodbye_call, new_call

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/calls/callsession/"


def test_detail_draws_the_timeline_with_the_barge_in(staff_client: Client) -> None:
    call = goodbye_call()

    response = staff_client.get(f"{LIST_URL}{call.pk}/change/")

    body = response.content.decode()
    assert response.status_code == 200
    assert '<svg id="call-timeline"' in body
    assert body.count('data-decision="barge_in"') == 2  # the caller's bar and the decision
    assert body.count('data-kind="playout"') == 3
    assert 'data-kind="decision" data-offset-ms="9000"' in body  # judged AI silent
    assert 'data-kind="drain"' in body
    assert 'data-kind="stream_ended"' in body
    assert "barge-in 4300 ms left" in body
    assert "playout_remaining_ms=4300, audio_end_ms=3000, reaction_ms=0.4" in body
    assert "AI silent: playout_ended_100ms_ago" in body
    # What the caller heard of the interrupted answer, and what was cut.
    assert "Your order ships on" in body
    assert "Monday by express courier." in body
    assert 'data-rule="missed_barge_in"' in body
    assert body.index('id="call-timeline"') < body.index('id="barge_ins-group"')


def test_list_flags_suspect_calls(staff_client: Client) -> None:
    goodbye_call()
    new_call("CA-clean").barge_in(2000, remaining_ms=3000).save()

    response = staff_client.get(LIST_URL)

    rows = {call.call_sid: call for call in response.context["cl"].result_list}
    assert rows[GOODBYE_SID].suspects == "drain_before_final_mark,missed_barge_in"
    assert rows["CA-clean"].suspects == ""
    body = response.content.decode()
    assert body.count('class="suspect-flag"') == 1
    assert "goodbye cut · missed barge-in" in body


def test_list_queries_do_not_grow_with_the_page(
    staff_client: Client, django_assert_max_num_queries: Any
) -> None:
    goodbye_call()
    staff_client.get(LIST_URL)  # session and permission caches warm
    with CaptureQueriesContext(connection) as few:
        staff_client.get(LIST_URL)
    for n in range(30):
        goodbye_call(f"CA-page-{n:02d}")

    with django_assert_max_num_queries(len(few)), CaptureQueriesContext(connection) as many:
        response = staff_client.get(LIST_URL)

    assert len(response.context["cl"].result_list) == CallSession.objects.count()
    assert len(many) == len(few)
