"""Ending live calls (admin action, command) and the liveness of calls whose process died."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from callcore.records import CallState
from calls.live.liveness import mark_alive, reap_lost_calls
from calls.models import CallSession, PlayoutLog

pytestmark = pytest.mark.django_db


def live_call(sid: str, alive_ago_s: float = 0.0) -> CallSession:
    now = timezone.now()
    return CallSession.objects.create(
        call_sid=sid,
        status=CallState.STREAMING,
        stream_started_at=now - timedelta(seconds=60),
        alive_at=now - timedelta(seconds=alive_ago_s),
    )


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """What the admin asked the channel layer, instead of a layer."""
    requests: list[tuple[str, str]] = []

    async def request_end(call_sid: str, by: str = "") -> None:
        requests.append((call_sid, by))

    monkeypatch.setattr("calls.live.control.request_end", request_end)
    return requests


def staff(client: Client, *, may_end: bool) -> User:
    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_callsession"))
    if may_end:
        user.user_permissions.add(Permission.objects.get(codename="end_call"))
    client.force_login(user)
    return user


def end_action(client: Client, *calls: CallSession) -> Any:
    return client.post(
        "/admin/calls/callsession/",
        {"action": "end_calls", "_selected_action": [c.pk for c in calls]},
        follow=True,
    )


def test_end_call_asks_the_holder_of_each_live_call_and_is_audited(
    client: Client, asked: list[tuple[str, str]]
) -> None:
    user = staff(client, may_end=True)
    live = live_call("CA" + "1" * 32)
    over = CallSession.objects.create(call_sid="CA" + "2" * 32, status=CallState.COMPLETED)

    response = end_action(client, live, over)

    assert response.status_code == 200
    assert asked == [(live.call_sid, "admin (op)")]
    said = [str(m) for m in response.context["messages"]]
    assert said == ["asked 1 live call(s) to end; 1 not live, left alone"]
    entry = LogEntry.objects.get()
    assert (entry.user_id, entry.object_id) == (user.pk, str(live.pk))
    assert "end the live call" in entry.change_message


def test_end_call_needs_the_permission(client: Client, asked: list[tuple[str, str]]) -> None:
    staff(client, may_end=False)
    live = live_call("CA" + "3" * 32)

    page = client.get("/admin/calls/callsession/")
    assert b"end_calls" not in page.content
    end_action(client, live)
    assert asked == []
    assert not LogEntry.objects.exists()


def test_the_end_call_command_refuses_the_in_memory_layer(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    live_call("CA" + "4" * 32)
    with pytest.raises(CommandError, match="use channels-redis"):
        call_command("end_call", "CA" + "4" * 32)


def test_calls_nobody_marks_alive_are_ended_as_server_lost() -> None:
    lost = live_call("CA" + "5" * 32, alive_ago_s=10)
    fresh = live_call("CA" + "6" * 32, alive_ago_s=1)
    held = live_call("CA" + "7" * 32, alive_ago_s=10)

    reaped = reap_lost_calls(held=[held.pk], lost_after_s=5)

    assert reaped == [lost.call_sid]
    lost.refresh_from_db()
    assert (lost.status, lost.end_reason) == ("completed", "server_lost")
    assert lost.ended_at is not None
    assert lost.alive_at is not None
    assert lost.ended_at == lost.alive_at  # ended at its last sign of life
    ended = PlayoutLog.objects.get(call=lost, kind="stream_ended")
    assert ended.details["end_reason"] == "server_lost"
    for call in (fresh, held):
        call.refresh_from_db()
        assert call.status == "streaming"


def test_a_process_marks_its_calls_alive() -> None:
    call = live_call("CA" + "8" * 32, alive_ago_s=10)
    mark_alive([call.pk])
    call.refresh_from_db()
    assert call.alive_at is not None
    assert timezone.now() - call.alive_at < timedelta(seconds=5)
    assert reap_lost_calls(held=[], lost_after_s=5) == []


def test_the_live_pages_end_call_asks_the_holder_and_is_audited(
    client: Client, asked: list[tuple[str, str]]
) -> None:
    user = staff(client, may_end=True)
    live = live_call("CA" + "7" * 32)

    response = client.post(f"/admin/calls/callsession/live/end/{live.call_sid}/")

    assert (response.status_code, response.json()) == (200, {"ended": True})
    assert asked == [(live.call_sid, "admin (op)")]
    entry = LogEntry.objects.get()
    assert (entry.user_id, entry.object_id) == (user.pk, str(live.pk))
    over = CallSession.objects.create(call_sid="CA" + "8" * 32, status=CallState.COMPLETED)
    assert client.post(f"/admin/calls/callsession/live/end/{over.call_sid}/").status_code == 404
    assert client.get(f"/admin/calls/callsession/live/end/{live.call_sid}/").status_code == 405


def test_the_live_pages_end_call_needs_the_permission_and_a_csrf_token(
    asked: list[tuple[str, str]],
) -> None:
    live = live_call("CA" + "9" * 32)
    viewer = Client()
    staff(viewer, may_end=False)
    assert viewer.post(f"/admin/calls/callsession/live/end/{live.call_sid}/").status_code == 403
    checked = Client(enforce_csrf_checks=True)
    User.objects.filter(username="op").update(is_superuser=True)
    checked.force_login(User.objects.get(username="op"))
    assert checked.post(f"/admin/calls/callsession/live/end/{live.call_sid}/").status_code == 403
    assert asked == []


def test_the_live_page_reads_the_calls_in_progress_again(client: Client) -> None:
    staff(client, may_end=False)
    live = live_call("CA" + "1" * 32)
    CallSession.objects.filter(pk=live.pk).update(from_number="+15005550006")
    CallSession.objects.create(call_sid="CA" + "2" * 32, status=CallState.COMPLETED)

    [call] = client.get("/admin/calls/callsession/live/calls.json").json()["calls"]

    assert (call["pk"], call["call_sid"], call["from_number"]) == (
        live.pk,
        live.call_sid,
        "+15005550006",
    )
    page = client.get("/admin/calls/callsession/live/").content.decode()
    assert 'data-may-end="false"' in page  # no button for those who may not end calls
