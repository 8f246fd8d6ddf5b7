"""Admin review pages render for staff with real rows and refuse anonymous users."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from callcore.records import CallState, RecordKind
from calls.models import BargeInEvent, CallSession, PlayoutLog
from calls.review.stored import review_calls

pytestmark = pytest.mark.django_db


@pytest.fixture
def call() -> CallSession:
    call = CallSession.objects.create(
        call_sid="CA" + "c" * 32,
        from_number="+15550001111",
        to_number="+15550002222",
        status=CallState.COMPLETED,
    )
    now = timezone.now()
    CallSession.objects.filter(pk=call.pk).update(ended_at=now + timedelta(seconds=30))
    BargeInEvent.objects.create(
        call=call,
        occurred_at=now,
        offset_ms=4200,
        playout_remaining_ms=4300,
        audio_end_ms=2000,
        reaction_ms=0.4,
    )
    PlayoutLog.objects.create(
        call=call,
        kind=RecordKind.BARGE_IN,
        occurred_at=now,
        offset_ms=4200,
        playout_status="playout_active_4300ms",
    )
    PlayoutLog.objects.create(
        call=call,
        kind=RecordKind.USER_SPEECH_AI_SILENT,
        occurred_at=now,
        offset_ms=9000,
        playout_status="playout_ended_1200ms_ago",
    )
    review_calls([call.pk])  # as the record writer does when the call's rows are in
    call.refresh_from_db()
    return call


@pytest.fixture
def staff_client(client: Client) -> Client:
    user = User.objects.create_user("reviewer", password="pw-for-tests-only", is_staff=True)
    user.is_superuser = True
    user.save()
    client.force_login(user)
    return client


def test_list_shows_calls_with_counts(staff_client: Client, call: CallSession) -> None:
    response = staff_client.get("/admin/calls/callsession/")

    assert response.status_code == 200
    row = response.context["cl"].result_list[0]
    assert row.call_sid == call.call_sid
    assert (row.barge_in_count, row.ai_silent_count) == (1, 1)
    assert call.call_sid in response.content.decode()


def test_list_search_and_filter(staff_client: Client, call: CallSession) -> None:
    CallSession.objects.create(call_sid="CA" + "d" * 32, from_number="+15557770000")

    found = staff_client.get("/admin/calls/callsession/", {"q": "+1555000111"})
    filtered = staff_client.get("/admin/calls/callsession/", {"status__exact": "ringing"})

    assert [c.call_sid for c in found.context["cl"].result_list] == [call.call_sid]
    assert [c.call_sid for c in filtered.context["cl"].result_list] == ["CA" + "d" * 32]


def test_detail_shows_barge_ins_and_playout_log(staff_client: Client, call: CallSession) -> None:
    response = staff_client.get(f"/admin/calls/callsession/{call.pk}/change/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "playout_active_4300ms" in body
    assert "playout_ended_1200ms_ago" in body
    assert body.index("playout_active_4300ms") < body.index("playout_ended_1200ms_ago")


@pytest.mark.parametrize(
    "path", ["/admin/calls/callsession/", "/admin/calls/callsession/1/change/"]
)
def test_anonymous_users_are_sent_to_login(client: Client, call: CallSession, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.fixture
def transferred(call: CallSession) -> CallSession:
    """The call answered by an agent that looked an order up and handed the caller to Sales."""
    CallSession.objects.filter(pk=call.pk).update(
        agent_name="sales-desk",
        agent={"name": "sales-desk", "voice": "marin", "tools": ["lookup_order"],
               "transfer_targets": {"Sales": "+15550003333"}, "source": "hook"},
        end_reason="transferred",
        transfer_target="Sales",
    )  # fmt: skip
    now = timezone.now()
    PlayoutLog.objects.create(
        call=call,
        kind=RecordKind.TOOL_CALL,
        occurred_at=now,
        offset_ms=5352,
        details={
            "call_id": "fc_1", "name": "lookup_order", "arguments": {"order_id": "A-1"},
            "outcome": "ok", "error": "", "duration_ms": 1150, "started_offset_ms": 4200,
            "dispatch_ms": 0.8, "reply_ms": 1.3, "caller_spoke": False, "answer_asked": True,
        },
    )  # fmt: skip
    PlayoutLog.objects.create(
        call=call,
        kind=RecordKind.TRANSFER_REQUESTED,
        occurred_at=now,
        offset_ms=9500,
        details={"call_id": "fc_2", "target": "Sales", "number": "+15550003333"},
    )
    review_calls([call.pk])
    call.refresh_from_db()
    return call


def test_detail_shows_the_agent_its_tool_calls_and_the_transfer(
    staff_client: Client, transferred: CallSession
) -> None:
    response = staff_client.get(f"/admin/calls/callsession/{transferred.pk}/change/")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="call-transfer"' in body
    assert "Transferred to Sales (+15550003333)" in body
    assert "chosen by the host&#x27;s hook" in body
    assert 'data-kind="tool" data-offset-ms="4200" data-end-ms="5350"' in body
    assert 'data-kind="transfer" data-offset-ms="9500"' in body


def test_list_shows_and_filters_by_agent(staff_client: Client, transferred: CallSession) -> None:
    CallSession.objects.create(call_sid="CA" + "d" * 32, agent_name="support")

    sales = staff_client.get("/admin/calls/callsession/", {"agent": "sales-desk"})
    moved = staff_client.get("/admin/calls/callsession/", {"end_reason": "transferred"})

    assert [c.call_sid for c in sales.context["cl"].result_list] == [transferred.call_sid]
    assert [c.call_sid for c in moved.context["cl"].result_list] == [transferred.call_sid]
    assert 'title="agent: sales-desk">sales-desk</span>' in sales.content.decode()
