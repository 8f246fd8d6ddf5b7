"""Model sessions opened at the voice webhook, waiting for the call's media stream.

Connecting to the Realtime API (TCP, TLS and WebSocket handshakes with
OpenAI, then `session.update`) is the longest step of a call's set-up.
Twilio opens the media stream only once it has our TwiML, so the voice
webhook is the first moment a session is known to be wanted: opened there,
it connects while Twilio connects the stream, and the stream's `start` finds
it configured, or nearly.

Per process, by CallSid. Whatever does not go to plan costs what opening at
`start` costs, which is what happens then:

- the stream lands on another process (several workers behind one address):
  that one opens its own, and this one's is closed unused after its time;
- the caller hangs up before the stream: the status callback closes it here,
  or its time does;
- `limit` sessions are already waiting (a burst, or webhooks that no stream
  follows): no more are opened until some are taken or closed;
- the opening fails, before or after the stream takes it, or its socket
  closes while it waits: the stream opens a session of its own (a stale
  failure must not end a call that a fresh session would carry);
- the process is shutting down: nothing is opened, and what waits is closed.

A session waiting here has been sent nothing but `session.update`: the model
generates nothing (and nothing is billed) until the call's stream starts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from calls.live.realtime import OpenedModel, close_quietly, discard_model, is_open

logger = logging.getLogger(__name__)

Opener = Callable[[], Coroutine[Any, Any, OpenedModel]]


@dataclass(frozen=True, slots=True)
class _Waiting:
    opening: asyncio.Future[OpenedModel]
    expiry: asyncio.TimerHandle


class PreopenedSessions:
    """The sessions this process opened for streams that have not started here, by CallSid.

    `keep_s` is how long one waits for its stream (0: none is opened ahead);
    at most `limit` wait at once.
    """

    def __init__(self, keep_s: float, limit: int) -> None:
        self.keep_s = keep_s
        self.limit = limit
        self._waiting: dict[str, _Waiting] = {}

    def __len__(self) -> int:
        """How many sessions wait for their streams."""
        return len(self._waiting)

    def open(self, call_sid: str, open_session: Opener) -> asyncio.Future[OpenedModel] | None:
        """Start opening `call_sid`'s session for its stream to take (None: none was started).

        Must run on the event loop that serves the stream (the ASGI server's).
        One a call: a second for the same call keeps the first (`take` replaces it
        should it have failed).
        """
        if self.keep_s <= 0 or call_sid in self._waiting:
            return None
        if len(self._waiting) >= self.limit:
            logger.debug(
                "no model session opened ahead: %d already wait for their streams", self.limit
            )
            return None
        opening = asyncio.ensure_future(open_session())
        opening.add_done_callback(_note_failure)
        loop = asyncio.get_running_loop()
        expiry = loop.call_later(self.keep_s, self._expire, call_sid, opening)
        self._waiting[call_sid] = _Waiting(opening, expiry)
        return opening

    def accepting(self) -> bool:
        """Whether `open` would open one now (sessions are opened ahead, and fewer than
        `limit` wait)."""
        return self.keep_s > 0 and len(self._waiting) < self.limit

    def waiting(self, call_sid: str) -> bool:
        """Whether a session opened ahead waits for this call's stream."""
        return call_sid in self._waiting

    def take(self, call_sid: str, open_anew: Opener) -> asyncio.Future[OpenedModel] | None:
        """The session opened ahead for this call's stream (done or still opening), or None.

        Should that opening fail (or have failed, or its socket have closed while
        it waited), the future gives a session from `open_anew` instead.
        """
        waiting = self._waiting.pop(call_sid, None)
        if waiting is None:
            return None
        waiting.expiry.cancel()
        return asyncio.ensure_future(_ahead_or_anew(waiting.opening, open_anew))

    def discard(self, call_sid: str) -> None:
        """The call will not stream here (it ended first): close its waiting session, if any."""
        waiting = self._waiting.pop(call_sid, None)
        if waiting is not None:
            waiting.expiry.cancel()
            discard_model(waiting.opening)

    def discard_all(self) -> None:
        """Forget every waiting session, closing those whose event loop still runs
        (the process is shutting down, or a test is done with them)."""
        while self._waiting:
            _, entry = self._waiting.popitem()
            entry.expiry.cancel()
            if not entry.opening.get_loop().is_closed():
                discard_model(entry.opening)

    def _expire(self, call_sid: str, opening: asyncio.Future[OpenedModel]) -> None:
        entry = self._waiting.get(call_sid)
        if entry is None or entry.opening is not opening:
            return
        del self._waiting[call_sid]
        discard_model(opening)
        if not _failed(opening):
            logger.info(
                "model session opened ahead closed unused: no stream for the call here within %s s",
                self.keep_s,
            )


async def _ahead_or_anew(opening: asyncio.Future[OpenedModel], open_anew: Opener) -> OpenedModel:
    try:
        opened = await opening
    except asyncio.CancelledError:
        # The stream was refused: the session goes too, should it open after all.
        discard_model(opening)
        raise
    except Exception as exc:
        logger.info("the session opened ahead failed (%s); opening another", type(exc).__name__)
        return await open_anew()
    if is_open(opened.connection):
        return opened
    logger.info("the session opened ahead was closed while it waited; opening another")
    await close_quietly(opened.connection)
    return await open_anew()


def _failed(opening: asyncio.Future[OpenedModel]) -> bool:
    return opening.done() and (opening.cancelled() or opening.exception() is not None)


def _note_failure(opening: asyncio.Future[OpenedModel]) -> None:
    if not opening.cancelled() and (error := opening.exception()) is not None:
        logger.warning("could not open the model session ahead: %s", type(error).__name__)
