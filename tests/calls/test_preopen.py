"""Model sessions opened at the voice webhook for the stream that follows (`calls.live.preopen`).

The registry's rules with a stand-in opener first; then the wiring: a voice
webhook served through the ASGI application, and the call's stream taking
the session it opened, on a scripted Realtime server reached through the
official SDK.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator

from calls.live import preopen
from calls.live.model import OpenedModel
from calls.models import CallSession
from tests.calls.fakes import FakeRealtime, TwilioStream
from tests.conftest import TEST_PUBLIC_BASE_URL, twilio_signature

CALL_SID = "CA" + "6" * 32
TIMEOUT = 5


class Connection:
    """What the registry sees of a session: it can be closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def close(self, *, code: int = 1000, reason: str = "") -> None:
        self.closed.set()


class Opener:
    """Opens sessions once told to (`released`), or fails them."""

    def __init__(self, error: Exception | None = None) -> None:
        self.connections: list[Connection] = []
        self.released = asyncio.Event()
        self.error = error

    async def __call__(self) -> OpenedModel:
        await self.released.wait()
        if self.error is not None:
            raise self.error
        connection = Connection()
        self.connections.append(connection)
        return OpenedModel(connection, connect_ms=1.0)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _forget_waiting() -> Any:
    yield
    preopen.discard_all()


async def test_the_stream_takes_the_session_opened_for_its_call() -> None:
    opener = Opener()

    assert preopen.preopen(CALL_SID, opener, keep_s=10, limit=10) is not None
    taken = preopen.take(CALL_SID)
    assert taken is not None
    assert not taken.done()  # still opening: the stream awaits it
    opener.released.set()
    opened = await asyncio.wait_for(taken, TIMEOUT)

    assert opened.connection is opener.connections[0]
    assert preopen.take(CALL_SID) is None  # taken once
    assert preopen.waiting() == 0


async def test_a_retried_webhook_keeps_the_first_session() -> None:
    first, second = Opener(), Opener()

    assert preopen.preopen(CALL_SID, first, keep_s=10, limit=10) is not None
    assert preopen.preopen(CALL_SID, second, keep_s=10, limit=10) is None
    first.released.set()
    second.released.set()

    taken = preopen.take(CALL_SID)
    assert taken is not None
    opened = await asyncio.wait_for(taken, TIMEOUT)
    assert first.connections == [opened.connection]
    assert second.connections == []


async def test_none_is_opened_when_turned_off_or_at_the_limit() -> None:
    opener = Opener()

    assert preopen.preopen(CALL_SID, opener, keep_s=0, limit=10) is None
    assert preopen.preopen("CA1", opener, keep_s=10, limit=2) is not None
    assert preopen.preopen("CA2", opener, keep_s=10, limit=2) is not None
    assert preopen.preopen("CA3", opener, keep_s=10, limit=2) is None

    assert preopen.waiting() == 2
    assert preopen.take("CA3") is None


async def test_a_session_nobody_takes_is_closed_when_its_time_is_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    opener = Opener()
    opener.released.set()

    with caplog.at_level(logging.INFO, logger="calls.live.preopen"):
        opening = preopen.preopen(CALL_SID, opener, keep_s=0.01, limit=10)
        assert opening is not None
        opened = await asyncio.wait_for(opening, TIMEOUT)
        await asyncio.wait_for(opened.connection.closed.wait(), TIMEOUT)  # type: ignore[attr-defined]

    assert preopen.take(CALL_SID) is None
    assert "closed unused" in caplog.text


async def test_a_call_that_ends_before_streaming_closes_its_session() -> None:
    opener = Opener()
    opener.released.set()
    opening = preopen.preopen(CALL_SID, opener, keep_s=10, limit=10)
    assert opening is not None
    opened = await asyncio.wait_for(asyncio.shield(opening), TIMEOUT)

    preopen.discard(CALL_SID)
    await asyncio.wait_for(opened.connection.closed.wait(), TIMEOUT)  # type: ignore[attr-defined]

    assert preopen.waiting() == 0


async def test_a_failed_opening_is_said_once_and_the_stream_opens_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    opener = Opener(error=ConnectionRefusedError())
    opener.released.set()

    with caplog.at_level(logging.WARNING, logger="calls.live.preopen"):
        opening = preopen.preopen(CALL_SID, opener, keep_s=10, limit=10)
        assert opening is not None
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(asyncio.shield(opening), TIMEOUT)

    assert preopen.take(CALL_SID) is None
    assert "could not open the model session ahead: ConnectionRefusedError" in caplog.text


# --- wired: the webhook through ASGI, then the stream ------------------------------------

VOICE_PARAMS = {
    "CallSid": CALL_SID,
    "AccountSid": "AC" + "2" * 32,
    "From": "+15550001111",
    "To": "+15550002222",
    "CallStatus": "ringing",
    "Direction": "inbound",
}


@pytest.fixture
async def realtime(settings: Any) -> AsyncIterator[FakeRealtime]:
    async with FakeRealtime() as server:
        settings.OPENAI_WEBSOCKET_BASE_URL = server.websocket_base_url
        settings.OPENAI_API_KEY = "sk-test"
        settings.AGENT_GREETING = "Hello there."
        settings.MODEL_PREOPEN_S = 10
        yield server


async def post_twilio(path: str, params: dict[str, str]) -> dict[str, Any]:
    from config.asgi import application

    signature = twilio_signature(TEST_PUBLIC_BASE_URL + path, params)
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"x-twilio-signature", signature.encode()),
    ]
    communicator = HttpCommunicator(application, "POST", path, urlencode(params).encode(), headers)
    return await communicator.get_response(timeout=TIMEOUT)  # type: ignore[no-any-return]


@pytest.mark.django_db(transaction=True)
async def test_the_webhook_opens_the_session_and_the_stream_starts_on_it(
    realtime: FakeRealtime,
) -> None:
    answered = await post_twilio("/twilio/voice/", VOICE_PARAMS)
    assert answered["status"] == 200
    # Configured before Twilio has even opened the stream.
    session = await realtime.session()
    await session.expect("session.update")
    assert session.of_type("response.create") == []

    twilio = TwilioStream.open(CALL_SID)
    await twilio.start()
    greeting = await session.expect("response.create")
    for _ in range(2):  # one 40 ms append
        await twilio.media(b"\xff" * 160)
    await session.expect_audio(320)

    assert greeting["response"]["instructions"].endswith("Hello there.")
    assert len(realtime.sessions) == 1  # the stream opened none of its own
    assert preopen.waiting() == 0
    await twilio.send({"event": "stop", "streamSid": twilio.stream_sid})
    await asyncio.wait_for(session.closed.wait(), TIMEOUT)


@pytest.mark.django_db(transaction=True)
async def test_a_call_hung_up_while_ringing_closes_the_session_opened_for_it(
    realtime: FakeRealtime,
) -> None:
    await post_twilio("/twilio/voice/", VOICE_PARAMS)
    session = await realtime.session()
    await session.expect("session.update")

    ended = await post_twilio("/twilio/status/", {**VOICE_PARAMS, "CallStatus": "no-answer"})

    assert ended["status"] == 204
    await asyncio.wait_for(session.closed.wait(), TIMEOUT)
    assert preopen.waiting() == 0
    call = await database_sync_to_async(CallSession.objects.get)(call_sid=CALL_SID)
    assert call.stream_started_at is None
