"""The staff live view: refused to anyone but staff, fed by the channel layer's live group."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from callcore.records import CallState
from calls.live.process import CallProcess
from calls.models import CallSession

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(*, staff: bool) -> bytes:
    user = User.objects.create_user("op" if staff else "someone", password="pw", is_staff=staff)
    if staff:
        User.objects.filter(pk=user.pk).update(is_superuser=True)
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def socket(cookie: bytes | None) -> WebsocketCommunicator:
    from config.asgi import application

    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/callbridge/live/ws/", headers=headers)


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
async def test_anyone_but_staff_is_refused_at_the_handshake(who: str) -> None:
    cookie = (
        None if who == "anonymous" else await database_sync_to_async(session_cookie)(staff=False)
    )
    communicator = socket(cookie)
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4403


async def test_staff_see_events_published_by_any_call(call_process: CallProcess) -> None:
    cookie = await database_sync_to_async(session_cookie)(staff=True)
    communicator = socket(cookie)
    connected, _ = await communicator.connect()
    assert connected

    call_process.feed.publish({"kind": "barge_in", "call_sid": "CA1", "reaction_ms": 0.2})
    event = await communicator.receive_json_from(timeout=5)
    assert (event["kind"], event["call_sid"], event["reaction_ms"]) == ("barge_in", "CA1", 0.2)
    assert event["at"] > 0
    await communicator.disconnect()


def test_the_page_lists_calls_in_progress(client: Client, settings: Any) -> None:
    User.objects.create_superuser("admin", password="pw")
    client.login(username="admin", password="pw")
    CallSession.objects.create(call_sid="CA" + "9" * 32, status=CallState.STREAMING)
    CallSession.objects.create(call_sid="CA" + "8" * 32, status=CallState.COMPLETED)

    page = client.get("/admin/calls/callsession/live/").content.decode()

    assert "CA" + "9" * 32 in page
    assert "CA" + "8" * 32 not in page
    assert "/callbridge/live/ws/" in page


def test_the_page_is_staff_only(client: Client) -> None:
    response = client.get("/admin/calls/callsession/live/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


async def test_a_page_of_another_origin_cannot_open_the_staff_socket() -> None:
    """The live view's socket is inside the Origin check (the media stream is not: every
    media-stream test connects without an Origin header, as Twilio does)."""
    cookie = await database_sync_to_async(session_cookie)(staff=True)
    from config.asgi import application

    headers = [
        (b"origin", b"https://elsewhere.example"),
        (b"host", b"localhost"),
        (b"cookie", cookie),
    ]
    communicator = WebsocketCommunicator(application, "/callbridge/live/ws/", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected
