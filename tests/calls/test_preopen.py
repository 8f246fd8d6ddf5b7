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
from websockets.protocol import State

from calls.live.preopen import PreopenedSessions
from calls.live.process import CallProcess
from calls.live.realtime import OpenedModel, discard_model
from calls.models import CallSession
from tests.callbridge import configure
from tests.calls.fakes import FakeRealtime, TwilioStream
from tests.calls.test_webhook import VOICE_PARAMS as WEBHOOK_PARAMS
from tests.conftest import TEST_PUBLIC_BASE_URL, twilio_signature

CALL_SID = "CA" + "6" * 32
TIMEOUT = 5


class Socket:
    state = State.OPEN


class Connection:
    """What the registry sees of a session: its socket's state, and it can be closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self._connection = Socket()

    async def close(self, *, code: int = 1000, reason: str = "") -> None:
        self.closed.set()


class Opener:
    """Opens sessions once told to (`released`), or fails them."""

    def __init__(self, error: Exception | None = None, released: bool = False) -> None:
        self.connections: list[Connection] = []
        self.released = asyncio.Event()
        self.opened = asyncio.Event()
        if released:
            self.released.set()
        self.error = error

    async def __call__(self) -> OpenedModel:
        await self.released.wait()
        if self.error is not None:
            raise self.error
        connection = Connection()
        self.connections.append(connection)
        self.opened.set()
        return OpenedModel(connection, connect_ms=1.0)  # type: ignore[arg-type]


@pytest.fixture
def registry() -> Any:
    """A registry of the tests' own: sessions wait 10 s, at most 10 at once."""
    sessions = PreopenedSessions(keep_s=10, limit=10)
    yield sessions
    sessions.discard_all()


def take(registry: PreopenedSessions, call_sid: str) -> asyncio.Future[OpenedModel] | None:
    return registry.take(call_sid, Opener(released=True))


async def test_the_stream_takes_the_session_opened_for_its_call(
    registry: PreopenedSessions,
) -> None:
    opener = Opener()

    assert registry.open(CALL_SID, opener) is not None
    taken = take(registry, CALL_SID)
    assert taken is not None
    assert not taken.done()  # still opening: the stream awaits it
    opener.released.set()
    opened = await asyncio.wait_for(taken, TIMEOUT)

    assert opened.connection is opener.connections[0]
    assert take(registry, CALL_SID) is None  # taken once
    assert len(registry) == 0


async def test_a_retried_webhook_keeps_the_first_session(registry: PreopenedSessions) -> None:
    first, second = Opener(released=True), Opener(released=True)

    assert registry.open(CALL_SID, first) is not None
    assert registry.open(CALL_SID, second) is None
    taken = take(registry, CALL_SID)
    assert taken is not None
    opened = await asyncio.wait_for(taken, TIMEOUT)

    assert first.connections == [opened.connection]
    assert second.connections == []


async def test_none_is_opened_when_turned_off_or_at_the_limit() -> None:
    opener = Opener()

    assert PreopenedSessions(keep_s=0, limit=10).open(CALL_SID, opener) is None
    registry = PreopenedSessions(keep_s=10, limit=2)
    assert registry.open("CA1", opener) is not None
    assert registry.open("CA2", opener) is not None
    assert registry.open("CA3", opener) is None

    assert len(registry) == 2
    assert take(registry, "CA3") is None
    registry.discard_all()


async def test_a_session_nobody_takes_is_closed_when_its_time_is_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    opener = Opener(released=True)

    with caplog.at_level(logging.INFO, logger="calls.live.preopen"):
        registry = PreopenedSessions(keep_s=0.01, limit=10)
        opening = registry.open(CALL_SID, opener)
        assert opening is not None
        opened = await asyncio.wait_for(opening, TIMEOUT)
        # Its expiry (a 10 ms loop timer) closes it.
        await asyncio.wait_for(opened.connection.closed.wait(), TIMEOUT)  # type: ignore[attr-defined]

    assert take(registry, CALL_SID) is None
    assert "closed unused" in caplog.text


async def test_a_call_that_ends_before_streaming_closes_its_session(
    registry: PreopenedSessions,
) -> None:
    opener = Opener(released=True)
    opening = registry.open(CALL_SID, opener)
    assert opening is not None
    opened = await asyncio.wait_for(asyncio.shield(opening), TIMEOUT)

    registry.discard(CALL_SID)

    await asyncio.wait_for(opened.connection.closed.wait(), TIMEOUT)  # type: ignore[attr-defined]
    assert len(registry) == 0


@pytest.mark.parametrize("when", ["before the stream takes it", "after the stream took it"])
async def test_a_failed_opening_is_said_once_and_the_stream_opens_its_own(
    when: str, caplog: pytest.LogCaptureFixture, registry: PreopenedSessions
) -> None:
    ahead = Opener(error=ConnectionRefusedError())
    anew = Opener(released=True)

    with caplog.at_level(logging.INFO, logger="calls.live.preopen"):
        opening = registry.open(CALL_SID, ahead)
        assert opening is not None
        if when == "before the stream takes it":
            ahead.released.set()
            with pytest.raises(ConnectionRefusedError):
                await asyncio.wait_for(asyncio.shield(opening), TIMEOUT)
        taken = registry.take(CALL_SID, anew)
        assert taken is not None
        ahead.released.set()
        opened = await asyncio.wait_for(taken, TIMEOUT)

    assert anew.connections == [opened.connection]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "could not open the model session ahead: ConnectionRefusedError"
    ]


async def test_a_session_closed_while_it_waited_is_replaced_by_a_fresh_one(
    registry: PreopenedSessions,
) -> None:
    ahead, anew = Opener(released=True), Opener(released=True)
    opening = registry.open(CALL_SID, ahead)
    assert opening is not None
    stale = await asyncio.wait_for(asyncio.shield(opening), TIMEOUT)
    stale.connection._connection.state = State.CLOSED  # type: ignore[attr-defined]

    taken = registry.take(CALL_SID, anew)
    assert taken is not None
    opened = await asyncio.wait_for(taken, TIMEOUT)

    assert opened.connection is anew.connections[0]
    assert stale.connection.closed.is_set()  # type: ignore[attr-defined]


async def test_a_refused_stream_closes_the_session_it_took_even_once_open(
    registry: PreopenedSessions,
) -> None:
    opener = Opener(released=True)
    registry.open(CALL_SID, opener)
    taken = take(registry, CALL_SID)
    assert taken is not None
    await asyncio.wait_for(opener.opened.wait(), TIMEOUT)  # open; the stream not yet told

    discard_model(taken)  # what the consumer does with a refused stream's session

    await asyncio.wait_for(opener.connections[0].closed.wait(), TIMEOUT)


# --- wired: the webhook through ASGI, then the stream ------------------------------------

VOICE_PARAMS = {**WEBHOOK_PARAMS, "CallSid": CALL_SID}


@pytest.fixture
async def realtime(settings: Any, call_process: CallProcess) -> AsyncIterator[FakeRealtime]:
    async with FakeRealtime() as server:
        configure(
            settings,
            OPENAI_WEBSOCKET_BASE_URL=server.websocket_base_url,
            OPENAI_API_KEY="sk-test",
            AGENT_GREETING="Hello there.",
        )
        call_process.preopened.keep_s = 10
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
    realtime: FakeRealtime, call_process: CallProcess
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
    assert len(call_process.preopened) == 0
    await twilio.send({"event": "stop", "streamSid": twilio.stream_sid})
    await asyncio.wait_for(session.closed.wait(), TIMEOUT)


@pytest.mark.django_db(transaction=True)
async def test_a_call_hung_up_while_ringing_closes_the_session_opened_for_it(
    realtime: FakeRealtime, call_process: CallProcess
) -> None:
    await post_twilio("/twilio/voice/", VOICE_PARAMS)
    session = await realtime.session()
    await session.expect("session.update")

    ended = await post_twilio("/twilio/status/", {**VOICE_PARAMS, "CallStatus": "no-answer"})

    assert ended["status"] == 204
    await asyncio.wait_for(session.closed.wait(), TIMEOUT)
    assert len(call_process.preopened) == 0
    call = await database_sync_to_async(CallSession.objects.get)(call_sid=CALL_SID)
    assert call.stream_started_at is None


@pytest.mark.django_db(transaction=True)
async def test_a_forged_or_repeated_webhook_opens_nothing(
    realtime: FakeRealtime, call_process: CallProcess
) -> None:
    from config.asgi import application

    body = urlencode(VOICE_PARAMS).encode()
    forged_headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"x-twilio-signature", b"forged"),
    ]
    forged = await HttpCommunicator(
        application, "POST", "/twilio/voice/", body, forged_headers
    ).get_response(timeout=TIMEOUT)
    assert forged["status"] == 403
    assert len(call_process.preopened) == 0

    first = await post_twilio("/twilio/voice/", VOICE_PARAMS)
    session = await realtime.session()
    taken = take(
        call_process.preopened, CALL_SID
    )  # as a stream would; a retry must not open another
    repeated = await post_twilio("/twilio/voice/", VOICE_PARAMS)

    assert (first["status"], repeated["status"]) == (200, 200)
    assert len(call_process.preopened) == 0
    assert taken is not None
    await asyncio.wait_for(taken, TIMEOUT)
    # The retry connected while its hooks chose the agent (before it could know it
    # was a retry): that connection is closed unused, never configured.
    extra = [s for s in realtime.sessions if s is not session]
    for other in extra:
        await asyncio.wait_for(other.closed.wait(), TIMEOUT)
        assert other.received == []
    assert len(extra) <= 1
    discard_model(taken)
    await asyncio.wait_for(session.closed.wait(), TIMEOUT)


@pytest.mark.django_db(transaction=True)
async def test_a_stream_with_a_bad_token_does_not_take_the_session(
    realtime: FakeRealtime, call_process: CallProcess
) -> None:
    await post_twilio("/twilio/voice/", VOICE_PARAMS)
    await realtime.session()

    forged = TwilioStream.open(CALL_SID)
    await forged.start(token="not-a-token")

    assert await forged.wait_closed() == 4401
    assert len(call_process.preopened) == 1  # still there for the call's real stream


@pytest.mark.django_db(transaction=True)
async def test_a_refused_stream_closes_the_session_opened_for_it(
    realtime: FakeRealtime, call_process: CallProcess
) -> None:
    await post_twilio("/twilio/voice/", VOICE_PARAMS)
    session = await realtime.session()
    await session.expect("session.update")
    # Another stream has the call already (a replayed token reaching this process).
    await database_sync_to_async(CallSession.objects.filter(call_sid=CALL_SID).update)(
        stream_sid="MZ" + "9" * 32
    )

    twilio = TwilioStream.open(CALL_SID)
    await twilio.start()

    assert await twilio.wait_closed() == 4409
    await asyncio.wait_for(session.closed.wait(), TIMEOUT)
    assert session.of_type("response.create") == []
    assert len(realtime.sessions) == 1
