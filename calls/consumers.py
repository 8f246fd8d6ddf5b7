"""The Channels consumers: Twilio's media stream (its hooks, and dispatch to the call),
and the staff live view's socket.

Who may stream is `calls.live.admission`'s to say (the handshake's
signature, then at `start` the token, the media format and the claim).

Messages are handled one at a time and nothing here waits on anything slow
once the stream is up: each parsed message goes to the call's shell
(`calls.live.bridge.CallBridge`), which asks the call's core what to do.

The receive loop is this consumer's own (`__call__`), not Channels'
`await_many_dispatch`: that one awaits `aclose_old_connections()` (a thread
hop onto the executor that database writes share) and creates a task for
every message, 50 times a second per call. The database is only touched
through the call path's own threads (`calls.live.db`), which keep Django's
connection hygiene themselves, so nothing is lost by skipping the hop on the
media path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer

from callcore import EndReason
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
from calls.conf import callbridge_settings
from calls.live import admission
from calls.live.admission import Refused
from calls.live.bridge import CallBridge, CallIdentity
from calls.live.control import ControlListener
from calls.live.feed import LIVE_GROUP
from calls.live.logcontext import bind_call
from calls.live.process import CallProcess, current
from calls.live.realtime import open_session
from calls.live.recorder import CallRecorder
from calls.liveview import VIEW_PERMISSION

logger = logging.getLogger(__name__)

CLOSE_PROTOCOL = 4400
CLOSE_NO_START = 4408
# The ASGI server's own code for a socket it closes because it is shutting down.
SERVER_SHUTTING_DOWN = 1012

# Malformed messages tolerated before a stream has started (after that, the call decides).
MAX_PROTOCOL_ERRORS_BEFORE_START = 50
# How long the live view's group operations may take before the layer counts as away.
LAYER_TIMEOUT_S = 2.0


class MediaStreamConsumer(AsyncWebsocketConsumer):
    """One Twilio media stream: `connected`, `start`, media and marks, `stop`.

    `process` (an `as_asgi` argument) is the process's root; by default the
    one the ASGI application started.
    """

    process: CallProcess | None = None
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
        if self.process is None:
            self.process = current()
        headers = dict(self.scope.get("headers", []))
        signature = headers.get(b"x-twilio-signature", b"").decode("latin-1")
        await self.accept()
        refused = admission.handshake(signature)
        if refused is not None:
            await self._refuse(refused)
            return
        # The handshake's signature is the same for every stream: a socket that
        # holds it must still show a call's `start` promptly, or it goes.
        timeout_s = callbridge_settings().STREAM_START_TIMEOUT_S
        self._start_timer = asyncio.get_running_loop().call_later(timeout_s, self._no_start)

    def _no_start(self) -> None:
        self._start_timer = None
        if self.bridge is None and not self.closing:
            logger.warning(
                "media stream refused: no start within %s s",
                callbridge_settings().STREAM_START_TIMEOUT_S,
            )
            assert self.process is not None
            self.process.keep(self._refuse(Refused(CLOSE_NO_START, "")))

    def _cancel_start_timer(self) -> None:
        timer = getattr(self, "_start_timer", None)
        if timer is not None:
            timer.cancel()
            self._start_timer = None

    async def _refuse(self, refused: Refused) -> None:
        if refused.reason:
            logger.warning("media stream refused: %s", refused.reason)
        self.closing = True
        await self.close(code=refused.code)

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
                await self._refuse(Refused(1011, ""))

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
                await self._refuse(Refused(1000, ""))
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
        process = self.process
        assert process is not None
        admitted = await admission.admit(start, process)
        if isinstance(admitted, Refused):
            await self._refuse(admitted)
            return
        if admitted.resumed:
            logger.info(
                "media stream started: a handover, %d turns carried over", len(admitted.resumed)
            )
        else:
            logger.info("media stream started")
        self.bridge = CallBridge(
            CallIdentity(
                admitted.call_pk,
                admitted.call_sid,
                start.stream_sid,
                admitted.from_number,
                admitted.to_number,
            ),
            twilio=self,
            config=admitted.config,
            process=process,
            model=admitted.model,
            recorder=CallRecorder(
                admitted.call_pk, admitted.started_wall, admitted.started_mono, process.writer
            ),
            started_at=admitted.started_mono,
            reopen=functools.partial(open_session, admitted.config),
            resumed_turns=admitted.resumed,
        )
        self.bridge.start()
        self._control = ControlListener(admitted.call_sid, self._operator_end)
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
            await self._refuse(Refused(CLOSE_PROTOCOL, ""))

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


# --- the staff live view -----------------------------------------------------------------


def _allowed(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(VIEW_PERMISSION)
    )


class LiveViewConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """The live view's socket: refused at the handshake to anyone but active staff with
    the view permission on calls; relays the `calls.live` group's events."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not await database_sync_to_async(_allowed)(user):
            logger.warning("live view refused: not staff with the view permission")
            await self.close(code=4403)
            return
        try:
            await asyncio.wait_for(
                self.channel_layer.group_add(LIVE_GROUP, self.channel_name), LAYER_TIMEOUT_S
            )
        except Exception as exc:
            logger.warning("live view unavailable: channel layer (%s)", type(exc).__name__)
            await self.close(code=1013)  # try again later
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.channel_layer.group_discard(LIVE_GROUP, self.channel_name), LAYER_TIMEOUT_S
            )

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Events go straight out: Channels' default dispatch first closes stale
        # database connections on the sync thread, a thread hop per message that
        # this consumer (no database after connect) does not need.
        if message["type"] == "live.events":
            relayed_at = time.time()
            for event in message["events"]:
                await self.send_json({**event, "relayed_at": relayed_at})
            return
        await super().dispatch(message)
