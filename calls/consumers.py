"""The Channels consumer for Twilio's media stream: authentication, then dispatch to the call.

Messages are handled one at a time and nothing here waits on anything slow
once the stream is up: each parsed message goes to the call's shell
(`calls.live.bridge.CallBridge`), which asks the call's core what to do.

The receive loop is this consumer's own (`__call__`), not Channels'
`await_many_dispatch`: that one awaits `aclose_old_connections()` (a thread
hop onto the executor that database writes share) and creates a task for
every message, 50 times a second per call. The database is only touched
through `calls.live.db.run_db`, which keeps Django's connection hygiene
itself, so nothing is lost by skipping the hop on the media path.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import timedelta
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from callcore import EndReason
from callcore.conversation import Turn
from callcore.protocol.twilio import (
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioProtocolError,
    Unknown,
    parse_twilio_message,
)
from calls.frontdoor.signatures import signature_valid, stream_url
from calls.frontdoor.tokens import verify_stream_token
from calls.live import preopen
from calls.live.bridge import CallBridge, CallIdentity
from calls.live.control import ControlListener
from calls.live.conversation import conversation_so_far
from calls.live.db import run_db
from calls.live.logcontext import bind_call
from calls.live.model import discard_model, open_session
from calls.live.recorder import CallRecorder
from calls.live.settings import BridgeSettings
from calls.models import CallSession, CallStatus

logger = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's).
CLOSE_BAD_SIGNATURE = 4403
CLOSE_BAD_TOKEN = 4401
CLOSE_UNKNOWN_CALL = 4404
CLOSE_PROTOCOL = 4400
CLOSE_NO_START = 4408
CLOSE_STREAM_EXISTS = 4409
CLOSE_MEDIA_FORMAT = 4415
# The ASGI server's own code for a socket it closes because it is shutting down.
SERVER_SHUTTING_DOWN = 1012

# How soon after a shutdown ended a call its handed-over stream must claim it.
HANDOVER_WINDOW = timedelta(seconds=60)

# Malformed messages tolerated before a stream has started (after that, the call decides).
MAX_PROTOCOL_ERRORS_BEFORE_START = 50


def _begin_stream(call_sid: str, start: Start) -> CallSession | int:
    """The call, now streaming; or the close code that refuses this stream.

    One stream per call: a replayed token must not open a second session. The
    check and the claim are one conditional UPDATE, atomic on every database.
    """
    now = timezone.now()
    streaming = {
        "stream_sid": start.stream_sid,
        "status": CallStatus.STREAMING,
        "stream_started_at": now,
        "alive_at": now,
    }
    claimed = CallSession.objects.filter(
        call_sid=call_sid, stream_sid="", ended_at__isnull=True
    ).update(**streaming)
    if not claimed:
        # A handover: the process that held the call shut down and Twilio, told by
        # our `<Connect action>`, opened a new stream for it (landing here).
        # Only just after the shutdown: a call left at server_shutdown (the caller hung
        # up during the handover) cannot be reopened later with an old token.
        claimed = (
            CallSession.objects.filter(
                call_sid=call_sid,
                end_reason=EndReason.SERVER_SHUTDOWN,
                ended_at__gte=now - HANDOVER_WINDOW,
            )
            .exclude(stream_sid=start.stream_sid)
            .update(
                **streaming,
                ended_at=None,
                end_reason="",
                handovers=F("handovers") + 1,
                # Live again: the review of the first leg no longer describes the call.
                reviewed_at=None,
                duration_ms=None,
            )
        )
    try:
        call = CallSession.objects.get(call_sid=call_sid)
    except CallSession.DoesNotExist:
        return CLOSE_UNKNOWN_CALL
    if not claimed:
        return CLOSE_STREAM_EXISTS
    if not call.account_sid and start.account_sid:
        # A call the voice webhook did not tell us the account of (it always does).
        call.account_sid = start.account_sid
        CallSession.objects.filter(pk=call.pk, account_sid="").update(account_sid=call.account_sid)
    return call


class MediaStreamConsumer(AsyncWebsocketConsumer):
    """One Twilio media stream: `connected`, `start`, media and marks, `stop`."""

    # A hook, overridable like Channels' own: who is told of each call's bridge
    # once it starts (tests, tools).
    bridge_started = staticmethod(lambda bridge: None)

    bridge: CallBridge | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        self.base_send = send
        # No channel-layer subscription: nothing reaches a call through the layer, and
        # a layer that fails (Redis gone) must not take the call down with it.
        self.channel_layer = None
        self.channel_name = None
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    await self.websocket_receive(message)
                elif kind == "websocket.connect":
                    await self.websocket_connect(message)
                elif kind == "websocket.disconnect":
                    await self.websocket_disconnect(message)
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            # The server is stopping this application (Daphne does so at shutdown).
            logger.info("media stream cancelled by the server: shutting down")
            if self.bridge is not None:
                self.closing = True
                await asyncio.shield(self.bridge.end(EndReason.SERVER_SHUTDOWN))
            raise
        finally:
            self._cancel_start_timer()
            control = getattr(self, "_control", None)
            if control is not None:
                await control.stop()
            # Whatever ends this consumer, the call must not outlive it: no model
            # session or task left running.
            if self.bridge is not None and not self.bridge.ended:
                logger.error("media stream consumer stopped abnormally; ending the call")
                self.closing = True
                await self.bridge.end(EndReason.INTERNAL_ERROR)

    async def connect(self) -> None:
        self.bridge = None
        self.closing = False
        self.protocol_errors = 0
        headers = dict(self.scope.get("headers", []))
        signature = headers.get(b"x-twilio-signature", b"").decode("latin-1")
        await self.accept()
        if not signature_valid(stream_url(), {}, signature):
            logger.warning(
                "media stream refused: %s handshake signature", "bad" if signature else "missing"
            )
            await self._refuse(CLOSE_BAD_SIGNATURE)
            return
        # The handshake's signature is the same for every stream: a socket that
        # holds it must still show a call's `start` promptly, or it goes.
        timeout_s = settings.STREAM_START_TIMEOUT_S
        self._start_timer = asyncio.get_running_loop().call_later(timeout_s, self._no_start)

    def _no_start(self) -> None:
        self._start_timer = None
        if self.bridge is None and not self.closing:
            logger.warning(
                "media stream refused: no start within %s s", settings.STREAM_START_TIMEOUT_S
            )
            task = asyncio.ensure_future(self._refuse(CLOSE_NO_START))
            _background.add(task)
            task.add_done_callback(_background.discard)

    def _cancel_start_timer(self) -> None:
        timer = getattr(self, "_start_timer", None)
        if timer is not None:
            timer.cancel()
            self._start_timer = None

    async def _refuse(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        # Never let one bad frame escape as an exception that would kill the
        # consumer without cleanup.
        try:
            await self.receive(message.get("text"), message.get("bytes"))
        except Exception:
            logger.exception("unexpected error handling a Twilio message")
            if self.bridge is not None:
                await self.bridge.end(EndReason.INTERNAL_ERROR)
            else:
                await self._refuse(1011)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        if text_data is None:
            await self._protocol_error("binary frame")
            return
        try:
            message = parse_twilio_message(text_data)
        except TwilioProtocolError as exc:
            await self._protocol_error(exc.reason)
            return
        bridge = self.bridge
        if isinstance(message, Media):
            if bridge is None:
                await self._protocol_error("media before start")
            else:
                await bridge.on_media(message)
        elif isinstance(message, Mark):
            if bridge is not None:
                await bridge.on_mark(message)
        elif isinstance(message, Start):
            await self._start(message)
        elif isinstance(message, Stop):
            logger.info("stop received")
            if bridge is not None:
                await bridge.end(EndReason.CALLER_HANGUP)
            else:
                await self._refuse(1000)
        elif isinstance(message, Dtmf):
            if bridge is not None:
                await bridge.on_dtmf(message)
        elif isinstance(message, Connected):
            logger.debug("connected: protocol=%s", message.protocol)
        elif isinstance(message, Unknown):
            await self._protocol_error(f"unknown event {message.event!r}")

    async def _start(self, start: Start) -> None:
        if self.bridge is not None:
            await self._protocol_error("second start")
            return
        self._cancel_start_timer()
        bind_call(start.call_sid, start.stream_sid)
        # Wall clock on purpose: the token was minted by another process (the
        # webhook), and monotonic clocks are not comparable across processes.
        problem = verify_stream_token(
            start.custom_parameters.get("token", ""), start.call_sid, time.time()
        )
        if problem is not None:
            logger.warning("media stream refused: stream token %s", problem)
            await self._refuse(CLOSE_BAD_TOKEN)
            return
        if not start.media_format_ok:
            logger.warning(
                "media stream refused: mediaFormat %s; this service takes "
                "audio/x-mulaw at 8000 Hz, 1 channel",
                start.media_format,
            )
            await self._refuse(CLOSE_MEDIA_FORMAT)
            return
        started_mono = time.monotonic()
        started_wall = timezone.now()
        bridge_settings = BridgeSettings.from_django()
        # The model session was opened at the voice webhook, if that ran in this
        # process; else it opens now, while the database claims the stream. Either
        # way the greeting starts sooner, and a refused stream closes it again.
        open_anew = functools.partial(open_session, bridge_settings)
        model = preopen.take(start.call_sid, open_anew) or asyncio.ensure_future(open_anew())
        try:
            call = await run_db(_begin_stream, start.call_sid, start)
        except BaseException:
            discard_model(model)
            raise
        if isinstance(call, int):
            discard_model(model)
            logger.warning(
                "media stream refused: %s",
                "no such call" if call == CLOSE_UNKNOWN_CALL else "the call already had a stream",
            )
            await self._refuse(call)
            return
        resumed: list[Turn] = []
        if call.handovers:
            resumed = await run_db(conversation_so_far, call.pk)
            logger.info("media stream started: a handover, %d turns carried over", len(resumed))
        else:
            logger.info("media stream started")
        self.bridge = CallBridge(
            CallIdentity(call.pk, call.call_sid, start.stream_sid),
            twilio=self,
            settings=bridge_settings,
            model=model,
            recorder=CallRecorder(call.pk, started_wall, started_mono),
            started_at=started_mono,
            reopen=open_anew,
            resumed_turns=tuple(resumed),
        )
        self.bridge.start()
        self.bridge_started(self.bridge)
        self._control = ControlListener(call.call_sid, self._operator_end)
        self._control.start()

    async def _operator_end(self, by: str) -> None:
        if self.bridge is not None and not self.bridge.ended:
            logger.info("ending the call: asked by an operator (%s)", by or "unknown")
            await self.bridge.end(EndReason.OPERATOR_HANGUP)

    async def _protocol_error(self, reason: str) -> None:
        if self.bridge is not None:
            await self.bridge.protocol_error(reason)
            return
        self.protocol_errors += 1
        if self.protocol_errors <= 5:
            logger.warning("twilio message skipped: %s", reason)
        if self.protocol_errors >= MAX_PROTOCOL_ERRORS_BEFORE_START:
            logger.error("too many malformed messages before start; closing the stream")
            await self._refuse(CLOSE_PROTOCOL)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if self.bridge is not None:
            # Uvicorn closes every socket with 1012 when it shuts down; anything
            # else is the caller's side going away.
            reason = (
                EndReason.SERVER_SHUTDOWN
                if code == SERVER_SHUTTING_DOWN
                else EndReason.CALLER_DISCONNECTED
            )
            await self.bridge.end(reason)

    # --- TwilioSide, for the bridge ------------------------------------------------

    async def send_text(self, text: str) -> None:
        if self.closing:
            return
        try:
            # Straight to the server's send: this runs 60 times a second per call.
            await self.base_send({"type": "websocket.send", "text": text})
        except OSError:
            # Uvicorn raises ClientDisconnected (an OSError) for a socket that is
            # gone; Daphne drops the message. Either way the caller has left.
            self._caller_gone()

    async def close_stream(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            try:
                await self.close(code=code)
            except OSError:
                logger.debug("the caller's socket was already gone at close")

    def _caller_gone(self) -> None:
        if self.closing:
            return
        self.closing = True
        logger.info("caller gone: the media stream socket is closed")
        if self.bridge is not None:
            self.bridge.caller_gone()


# Refusals started from timer callbacks, kept referenced until they finish.
_background: set[asyncio.Future[None]] = set()
