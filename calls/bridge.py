"""The asyncio shell that drives one call: Twilio socket, Realtime session, pacing.

All playout decisions are made by `playout.PlayoutTracker`, a pure state
machine; this module reads the clock, moves bytes, and records. It owns three
tasks per call, each cancelled and awaited on every way out:

- uplink: caller audio to the model, in order, none dropped (queued while the
  Realtime session connects);
- model (`calls.model_events`): the Realtime event reader (audio deltas in,
  barge-in, hangup);
- pacer (`calls.pacer`): model audio out to Twilio in 20 ms frames with marks,
  so Twilio holds at most PLAYOUT_LEAD_MS of unplayed audio; it also notices
  when the goodbye (`calls.goodbye`) has drained.

Nothing on the audio path awaits the database: `CallRecorder` buffers rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from calls.errors import ModelGone
from calls.goodbye import Goodbye, Hangup
from calls.input_clock import InputClock
from calls.model_events import ModelEvents
from calls.models import EndReason
from calls.pacer import Pacer
from calls.protocol import realtime as rt
from calls.protocol.twilio import Dtmf, Mark, Media, clear_message
from calls.realtime_client import RealtimeConnection
from calls.recorder import CallRecorder
from calls.settings import BridgeSettings
from playout import PlayoutTracker

logger = logging.getLogger(__name__)


class TwilioSide(Protocol):
    """The media-stream socket, as the bridge sees it."""

    async def send_text(self, text: str) -> None: ...

    async def close_stream(self, code: int) -> None: ...


@dataclass(frozen=True, slots=True)
class CallIdentity:
    pk: int
    call_sid: str
    stream_sid: str


Connector = Callable[[BridgeSettings], Awaitable[RealtimeConnection]]


async def open_model(connect: Connector, settings: BridgeSettings) -> RealtimeConnection:
    """Connect a Realtime session and configure it (`session.update` is its first event)."""
    connection = await connect(settings)
    try:
        await connection.send_raw(rt.session_update(settings.session))
    except BaseException:
        await _close_quietly(connection)
        raise
    return connection


def discard_model(opening: asyncio.Future[RealtimeConnection]) -> None:
    """A session opened for a stream that was refused: stop it, or close it once open."""

    def close_when_open(future: asyncio.Future[RealtimeConnection]) -> None:
        if not future.cancelled() and future.exception() is None:
            task = asyncio.ensure_future(_close_quietly(future.result()))
            _background.add(task)
            task.add_done_callback(_background.discard)

    opening.cancel()
    opening.add_done_callback(close_when_open)


async def _close_quietly(connection: RealtimeConnection) -> None:
    try:
        await asyncio.wait_for(connection.close(), timeout=2)
    except Exception:  # the model side may already be gone
        logger.debug("realtime close failed", exc_info=True)


# Closes of discarded sessions, kept referenced until they finish.
_background: set[asyncio.Task[None]] = set()

# How long a call's end may wait for its last records to be written.
RECORDS_TIMEOUT_S = 15

# The calls this process is bridging right now, by call SID.
LIVE_BRIDGES: dict[str, CallBridge] = {}


class CallBridge:
    """Bridges one Twilio media stream to one Realtime session."""

    def __init__(
        self,
        call: CallIdentity,
        twilio: TwilioSide,
        settings: BridgeSettings,
        model: asyncio.Future[RealtimeConnection],
        recorder: CallRecorder,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call = call
        self.settings = settings
        self.tracker = PlayoutTracker(settings.playout)
        self.recorder = recorder
        self.input_clock = InputClock()
        self.clock = clock
        self._twilio = twilio
        self._model_opening = model
        self._rt: RealtimeConnection | None = None
        self._uplink: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._ending: asyncio.Future[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        # Responses the model is still generating (created, not yet done).
        self.generating: set[str] = set()
        self._model_lost = False
        self.pacer = Pacer(self)
        self.goodbye = Goodbye(self)
        self.model_events = ModelEvents(self)

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        LIVE_BRIDGES[self.call.call_sid] = self
        self.recorder.log("stream_started", self.clock())
        self._spawn(self._run_uplink(), "uplink")
        self._spawn(self.pacer.run(), "pacer")

    def _spawn(self, work: Coroutine[Any, Any, None], role: str) -> None:
        if self.ended:
            work.close()
            return
        task = asyncio.create_task(work, name=f"{role}-{self.call.call_sid}")
        task.add_done_callback(self._task_finished)
        self._tasks.append(task)

    def _task_finished(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, ModelGone):
            return
        if exc is not None:
            # A bug must not leave the call half-bridged: end it, with the evidence.
            logger.error("task %s failed", task.get_name(), exc_info=exc)
            self.request_end(EndReason.INTERNAL_ERROR)

    async def end(self, reason: str) -> None:
        """End the call (idempotent): stop every task, record, close both sockets."""
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._shutdown(reason))
        await asyncio.shield(self._ending)

    def request_end(self, reason: str) -> None:
        """End from inside one of our own tasks, which `end` is about to cancel."""
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._shutdown(reason))

    async def wait_ended(self) -> None:
        """Return once the call has fully ended: tasks stopped, records written."""
        await self.wait_until(lambda: self._ending is not None)
        assert self._ending is not None
        await asyncio.shield(self._ending)

    @property
    def ended(self) -> bool:
        return self._ending is not None

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        return tuple(self._tasks)

    async def _shutdown(self, reason: str) -> None:
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        now = self.clock()
        ai_audio_ms = self.pacer.audio_sent_bytes // 8
        self.pacer.flush_mark_stats(now)
        self.recorder.log("stream_ended", now, self.tracker.playout_status(now), end_reason=reason)
        self.recorder.update_call(
            status="completed",
            ended_at=self.recorder.wall(now),
            end_reason=reason,
            responses=self.model_events.responses_seen,
            ai_audio_ms=ai_audio_ms,
        )
        # The caller first: hanging up must not wait on the database.
        try:
            await self._twilio.close_stream(1000)
        except Exception:
            logger.debug("twilio close failed", exc_info=True)
        try:
            await asyncio.wait_for(self.recorder.close(), RECORDS_TIMEOUT_S)
        except TimeoutError:
            logger.error("call records not written within %d s", RECORDS_TIMEOUT_S)
        logger.info(
            "call ended: reason=%s responses=%d ai_audio_ms=%d",
            reason,
            self.model_events.responses_seen,
            ai_audio_ms,
        )
        # The model's socket last: once it closes, the call's record is complete.
        if self._rt is not None:
            await _close_quietly(self._rt)
        elif not self._model_opening.done():
            discard_model(self._model_opening)
        if reason == EndReason.AGENT_HANGUP:
            await self._complete_call_via_rest()
        if LIVE_BRIDGES.get(self.call.call_sid) is self:
            del LIVE_BRIDGES[self.call.call_sid]
        self.pulse()

    # --- observation -----------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds, re-checked after every step of the call.

        For tests and operators' tools: it lets them await a state (say, "the AI
        is no longer heard") instead of sleeping for it.
        """
        loop = asyncio.get_running_loop()
        while not predicate():
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            await waiter

    def pulse(self) -> None:
        """Wake `wait_until` callers: the call has moved a step."""
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _complete_call_via_rest(self) -> None:
        if not (self.settings.twilio_account_sid and self.settings.twilio_auth_token):
            return
        from calls.twilio_rest import complete_call

        try:
            await asyncio.wait_for(
                asyncio.to_thread(complete_call, self.settings, self.call.call_sid), timeout=10
            )
        except Exception:
            logger.warning("could not complete the call through the REST API", exc_info=True)

    # --- caller side (called by the consumer, one message at a time) ---------

    def on_media(self, media: Media) -> None:
        self.input_clock.record(media.audio_bytes, self.clock())
        self._uplink.put_nowait(rt.input_audio_append(media.payload_b64))

    def on_mark(self, mark: Mark) -> None:
        self.pacer.note_echo(self.tracker.mark_echoed(mark.name, self.clock()))
        self.pacer.wake()

    def on_dtmf(self, dtmf: Dtmf) -> None:
        now = self.clock()
        logger.info("DTMF digit received")
        self.recorder.log("dtmf", now, self.tracker.playout_status(now), digit=dtmf.digit)

    def protocol_error(self, reason: str) -> None:
        self.recorder.log("protocol_error", self.clock(), reason=reason)

    # --- uplink ----------------------------------------------------------------

    async def _run_uplink(self) -> None:
        try:
            self._rt = await self._model_opening
        except Exception as exc:
            logger.error("could not open the Realtime session: %s", type(exc).__name__)
            self.recorder.log("model_error", self.clock(), code="connect_failed", message=str(exc))
            self.request_end(EndReason.MODEL_CONNECT_FAILED)
            return
        if self.settings.greeting:
            await self.send_model(rt.response_create(self.settings.greeting_instructions))
        self._spawn(self.model_events.run(self._rt), "model")
        while True:
            await self.send_model(await self._uplink.get())

    def queue_model(self, text: str) -> None:
        """Send a client event after the caller audio already queued."""
        self._uplink.put_nowait(text)

    async def send_model(self, text: str) -> None:
        """Send a client event; raises ModelGone (and ends the call) if the socket is closed."""
        assert self._rt is not None
        try:
            await self._rt.send_raw(text)
        except ConnectionClosed as exc:
            self.model_closed(exc)
            raise ModelGone from exc

    def model_closed(self, exc: BaseException) -> None:
        """The Realtime socket closed: what the caller hears plays out, then the call ends."""
        if self._model_lost:
            return
        self._model_lost = True
        now = self.clock()
        clean = isinstance(exc, ConnectionClosedOK)
        logger.warning("Realtime connection closed (%s)", "clean" if clean else "abnormal")
        self.recorder.log(
            "model_error",
            now,
            code="connection_closed",
            message="closed cleanly" if clean else "closed abnormally",
        )
        # What the caller was already hearing plays out; then the call ends.
        if self.goodbye.state is not Hangup.DRAINING:
            self.goodbye.start(now, EndReason.MODEL_DISCONNECTED)

    # --- Twilio output --------------------------------

    async def send_twilio(self, text: str) -> None:
        await self._twilio.send_text(text)

    async def send_clear(self) -> None:
        await self._twilio.send_text(clear_message(self.call.stream_sid))
