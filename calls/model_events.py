"""The Realtime event reader of one call: what each server event does to the call."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from calls.barge_in import BargeInHandler
from calls.protocol import realtime as rt
from calls.realtime_client import RealtimeConnection

if TYPE_CHECKING:
    from calls.bridge import CallBridge

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], float], Awaitable[None]]


class ModelEvents:
    """Reads server events raw (`recv_bytes` + `json.loads`) and branches on `type`.

    GA and beta event names are both accepted; unknown types are ignored, as
    the SDK would hand back any shape. `now` is read once per event, when it
    arrived, so a barge-in's reaction time starts there.
    """

    def __init__(self, bridge: CallBridge) -> None:
        self._bridge = bridge
        self._barge_in = BargeInHandler(bridge)
        self.responses_seen = 0
        self._handlers: dict[str, Handler] = {
            "session.created": self._session_created,
            "response.created": self._response_created,
            **dict.fromkeys(rt.AUDIO_DELTA, self._audio_delta),
            **dict.fromkeys(rt.AUDIO_DONE, self._audio_done),
            "response.done": self._response_done,
            "response.function_call_arguments.done": self._function_call_done,
            "input_audio_buffer.speech_started": self._barge_in.on_speech_started,
            "input_audio_buffer.speech_stopped": self._speech_stopped,
            "conversation.item.truncated": self._truncated,
            "error": self._error,
        }

    async def run(self, connection: RealtimeConnection) -> None:
        bridge = self._bridge
        while True:
            try:
                raw = await connection.recv_bytes()
            except ConnectionClosed as exc:
                bridge.model_closed(exc)
                return
            now = bridge.clock()
            try:
                event = json.loads(raw)
                kind = event["type"]
            except (ValueError, TypeError, KeyError):
                logger.warning("unreadable Realtime event skipped")
                continue
            handler = self._handlers.get(kind)
            if handler is not None:
                await handler(event, now)
                bridge.pulse()

    async def _session_created(self, event: dict[str, Any], now: float) -> None:
        session = event.get("session")
        session_id = session.get("id") if isinstance(session, dict) else None
        if isinstance(session_id, str):
            self._bridge.recorder.update_call(model_session_id=session_id[:64])

    async def _response_created(self, event: dict[str, Any], now: float) -> None:
        bridge = self._bridge
        response_id = str((event.get("response") or {}).get("id", ""))
        generation = bridge.tracker.response_started(response_id, now)
        bridge.generating.add(response_id)
        self.responses_seen += 1
        bridge.recorder.log(
            "response_started",
            now,
            bridge.tracker.playout_status(now),
            response_id=response_id,
            generation=generation,
        )

    async def _audio_delta(self, event: dict[str, Any], now: float) -> None:
        try:
            audio = base64.b64decode(event.get("delta", ""), validate=True)
        except (binascii.Error, ValueError):
            logger.warning("audio delta with bad base64 skipped")
            return
        response_id, item_id = str(event.get("response_id", "")), str(event.get("item_id", ""))
        if self._bridge.tracker.audio_delta(response_id, item_id, audio, now):
            self._bridge.pacer.wake()

    async def _audio_done(self, event: dict[str, Any], now: float) -> None:
        response_id, item_id = str(event.get("response_id", "")), str(event.get("item_id", ""))
        self._bridge.tracker.audio_done(response_id, item_id, now)
        self._bridge.pacer.wake()

    async def _response_done(self, event: dict[str, Any], now: float) -> None:
        bridge = self._bridge
        response = event.get("response") or {}
        response_id = str(response.get("id", ""))
        bridge.generating.discard(response_id)
        bridge.tracker.response_done(response_id, now)
        bridge.recorder.log(
            "response_done",
            now,
            bridge.tracker.playout_status(now),
            response_id=response_id,
            status=str(response.get("status", "")),
            audio_ms=bridge.tracker.response_audio_ms(response_id),
        )
        for call_id in rt.end_call_ids(response):
            bridge.goodbye.requested(call_id, response_id, now)
        bridge.goodbye.response_done(now)
        bridge.pacer.wake()

    async def _function_call_done(self, event: dict[str, Any], now: float) -> None:
        if event.get("name") == rt.END_CALL_TOOL:
            call_id, response_id = str(event.get("call_id", "")), str(event.get("response_id", ""))
            self._bridge.goodbye.requested(call_id, response_id, now)

    async def _speech_stopped(self, event: dict[str, Any], now: float) -> None:
        tracker = self._bridge.tracker
        self._bridge.recorder.log(
            "speech_stopped",
            now,
            tracker.playout_status(now),
            audio_end_ms=event.get("audio_end_ms"),
        )

    async def _truncated(self, event: dict[str, Any], now: float) -> None:
        self._bridge.recorder.log(
            "truncated", now, item_id=event.get("item_id"), audio_end_ms=event.get("audio_end_ms")
        )

    async def _error(self, event: dict[str, Any], now: float) -> None:
        error = event.get("error") or {}
        code = str(error.get("code") or error.get("type") or "unknown")
        message = str(error.get("message", ""))[:300]
        if code == "response_cancel_not_active":
            # The server's own interrupt_response won the race: nothing to cancel.
            logger.info("response.cancel found no active response")
        else:
            logger.warning("Realtime error event: code=%s message=%s", code, message)
        self._bridge.recorder.log("model_error", now, code=code, message=message)
