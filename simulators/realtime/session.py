"""One simulated Realtime connection: dispatches client events, runs VAD, responses and faults."""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from simulators.realtime import events
from simulators.realtime.conversation import Conversation, Item
from simulators.realtime.events import Event, EventNames
from simulators.realtime.item_events import ItemEvents
from simulators.realtime.recording import SessionRecording
from simulators.realtime.responder import ResponseRun
from simulators.realtime.script import Disconnect, Fault, GoSilent, RealtimeScript, SendError
from simulators.realtime.transcription import Turn, transcript
from simulators.realtime.vad import EnergyVad, SpeechStarted, VadConfig, VadEvent

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]

_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'


class RealtimeSession:
    """The server side of one connection; state is inspectable by tests."""

    def __init__(
        self,
        connection: ServerConnection,
        script: RealtimeScript,
        names: EventNames,
        recording: SessionRecording,
        model: str,
    ) -> None:
        self.connection = connection
        self.script = script
        self.names = names
        self.recording = recording
        self.model = model
        self.session: dict[str, Any] = events.default_session(model)
        self.conversation = Conversation(held_short_ms=script.held_short_ms)
        self.vad = EnergyVad(self._vad_config())
        self.responses: list[ResponseRun] = []
        self.active: ResponseRun | None = None
        self.completed_responses = 0
        self.faults_applied: list[Fault] = []
        self.closed = False
        # A GoSilent fault: nothing more is sent (and maybe nothing more read).
        self.silent = False
        self.caller_turns = 0  # user audio items committed, in order
        self._turns: dict[str, Turn] = {}  # item id -> its turn, until transcribed
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0  # the current speech's `audio_start_ms`
        # The caller's turn whose transcription waits for its answer's first events.
        self._transcript_due: str | None = None
        self._auto_response_pending = False
        # Codes of the truncates still to refuse, first first (`reject_truncates` is as
        # many `unsupported_content_type` refusals).
        self.truncate_refusals = (
            list(script.refuse_truncates_with)
            + ["unsupported_content_type"] * script.reject_truncates
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Handler] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit,
            "input_audio_buffer.clear": self._clear,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }
        items = ItemEvents(self)
        self._handlers.update(
            {
                "conversation.item.create": items.create,
                "conversation.item.truncate": items.truncate,
                "conversation.item.delete": items.delete,
                "conversation.item.retrieve": items.retrieve,
            }
        )

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        detection = self.session.get("audio", {}).get("input", {}).get("turn_detection")
        return detection if isinstance(detection, dict) else None

    def _vad_config(self) -> VadConfig:
        td = self.turn_detection or {}
        return VadConfig(
            threshold=float(td.get("threshold") or 0.5),
            prefix_padding_ms=int(td.get("prefix_padding_ms") or 0),
            silence_duration_ms=int(td.get("silence_duration_ms") or 200),
            detect_ms=self.script.speech_detect_ms,
        )

    async def send(self, event: Event, audio_bytes: int | None = None) -> None:
        """Send one server event and record it (a silent session sends nothing)."""
        if self.silent:
            return
        await self.connection.send(json.dumps(event))
        self.recording.record_sent(event, audio_bytes)

    async def serve(self) -> None:
        """Run the connection until it closes."""
        try:
            await self.send(events.event("session.created", session=self.session))
            await self._after_responses()
            async for message in self.connection:
                await self._dispatch(message)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            if self.active is not None:
                self.active.cancel("client_disconnected")
            for task in list(self._tasks):
                task.cancel()
            self.recording.record_received({"type": "<closed>"})

    async def _dispatch(self, message: str | bytes) -> None:
        # Appends are most of the traffic; one written exactly as the bridge writes
        # them is read without building a dict (any other shape takes the full path).
        if isinstance(message, str) and message.startswith(_APPEND_PREFIX):
            audio = message[len(_APPEND_PREFIX) : -2]
            if message.endswith('"}') and '"' not in audio:
                await self._append({"type": "input_audio_buffer.append", "audio": audio})
                return
        try:
            payload = json.loads(message)
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            self.recording.record_received({"type": "<malformed>", "raw": str(message)[:200]})
            await self.error("invalid_json", f"Invalid JSON in client event: {exc}")
            return
        event_type = payload.get("type")
        handler = self._handlers.get(str(event_type))
        if handler is None:
            self.recording.record_received(payload)
            await self.error(
                "invalid_value",
                f"Invalid value: '{event_type}'. Not a supported client event type.",
                param="type",
            )
            return
        try:
            await handler(payload)
        except (KeyError, TypeError, ValueError) as exc:
            await self.error("missing_required_parameter", f"Missing or invalid parameter: {exc}")

    async def error(self, code: str, message: str, *, param: str | None = None) -> None:
        """An `error` event as the service sends it: `error.event_id` null, whatever
        event id the client event it answers carried (every refusal seen live)."""
        await self.send(events.error_event(code, message, param=param))

    async def _session_update(self, payload: dict[str, Any]) -> None:
        self.recording.record_received(payload)
        update = payload["session"]
        if not isinstance(update, dict):
            raise TypeError("session must be an object")
        self.session = events.merge(self.session, update)
        self.vad.reconfigure(self._vad_config())
        output_format = self.session.get("audio", {}).get("output", {}).get("format", {})
        if output_format.get("type") != "audio/pcmu":
            logger.warning("realtime sim: output format %s; sending mu-law anyway", output_format)
        await self.send(events.event("session.updated", session=self.session))

    async def _append(self, payload: dict[str, Any]) -> None:
        try:
            audio = binascii.a2b_base64(payload["audio"], strict_mode=True)
        except (binascii.Error, TypeError) as exc:
            self.recording.record_received(payload)
            raise ValueError(f"audio is not valid base64: {exc}") from exc
        self.recording.record_received(payload, len(audio))
        self.recording.add_input_audio(audio)
        for decision in self.vad.feed(audio):
            if self.turn_detection is not None:
                await self._on_vad(decision)

    async def _on_vad(self, decision: VadEvent) -> None:
        td = self.turn_detection or {}
        if isinstance(decision, SpeechStarted):
            self._speech_item_id = events.new_id("item")
            self._speech_start_ms = decision.audio_start_ms
            await self.send(
                events.event(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=decision.audio_start_ms,
                    item_id=self._speech_item_id,
                )
            )
            active = self.active
            if td.get("interrupt_response", True) and active is not None and not active.cancelled:
                active.cancel("turn_detected")
            return
        item_id = self._speech_item_id or events.new_id("item")
        self._speech_item_id = None
        await self.send(
            events.event(
                "input_audio_buffer.speech_stopped",
                audio_end_ms=decision.audio_end_ms,
                item_id=item_id,
            )
        )
        await self._commit_user_audio(item_id, self._speech_start_ms, decision.audio_end_ms)
        if td.get("create_response", True) and self.active is None:
            # The transcription comes once the answer has started, as the service sends it.
            self._transcript_due = item_id
            self._start_response()
            return
        if td.get("create_response", True):
            self._auto_response_pending = True
        await self._transcribe(item_id)

    async def on_response_started(self) -> None:
        """A response's first events are out: the caller's words it answers follow."""
        item_id, self._transcript_due = self._transcript_due, None
        if item_id is not None:
            await self._transcribe(item_id)

    async def _commit_user_audio(
        self, item_id: str, audio_start_ms: int | None = None, audio_end_ms: int | None = None
    ) -> None:
        self.caller_turns += 1
        self._turns[item_id] = Turn(self.caller_turns, audio_start_ms, audio_end_ms)
        previous = self.conversation.add(Item(item_id, "message", "user"))
        await self.send(
            events.event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        )
        item = events.user_audio_item(self.names, item_id)
        await self.send(events.event(self.names.item_added, previous_item_id=previous, item=item))
        if self.names.item_done is not None:
            await self.send(
                events.event(self.names.item_done, previous_item_id=previous, item=item)
            )

    async def _transcribe(self, item_id: str) -> None:
        """Input transcription, when the session asked for it (GA or beta field): the
        words heard in the item's own audio (`transcription.transcript`)."""
        turn = self._turns.pop(item_id, None) or Turn(self.caller_turns)
        audio_input = self.session.get("audio", {}).get("input", {})
        if not (audio_input.get("transcription") or self.session.get("input_audio_transcription")):
            return
        text = transcript(self.script, turn, self.recording.input_audio)
        where = {"item_id": item_id, "content_index": 0}
        await self.send(
            events.event("conversation.item.input_audio_transcription.delta", **where, delta=text)
        )
        await self.send(
            events.event(
                "conversation.item.input_audio_transcription.completed",
                **where,
                transcript=text,
            )
        )

    async def _commit(self, payload: dict[str, Any]) -> None:
        self.recording.record_received(payload)
        await self._commit_user_audio(events.new_id("item"))

    async def _clear(self, payload: dict[str, Any]) -> None:
        self.recording.record_received(payload)
        await self.send(events.event("input_audio_buffer.cleared"))

    async def _response_create(self, payload: dict[str, Any]) -> None:
        self.recording.record_received(payload)
        if self.active is not None:
            await self.error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.active.id}. "
                "Wait until the response is finished before creating a new one.",
            )
            return
        self._start_response()

    async def _response_cancel(self, payload: dict[str, Any]) -> None:
        self.recording.record_received(payload)
        active = self.active
        wanted = payload.get("response_id")
        if active is None or active.cancelled or (wanted and wanted != active.id):
            await self.error(
                "response_cancel_not_active", "Cancellation failed: no active response found"
            )
            return
        active.cancel("client_cancelled")

    def _start_response(self) -> None:
        self._auto_response_pending = False
        index = self.script.response_offset + len(self.responses) + 1
        run = ResponseRun(self, index, self.script.reply_for(index))
        self.responses.append(run)
        self.active = run
        task = asyncio.create_task(self._drive(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drive(self, run: ResponseRun) -> None:
        try:
            await run.run()
        except ConnectionClosed:
            return
        finally:
            if self.active is run:
                self.active = None
        self.completed_responses += 1
        try:
            await self._after_responses()
        except ConnectionClosed:
            return  # a scripted fault closed the connection
        chained = run.index <= self.script.back_to_back and not run.cancelled
        if (self._auto_response_pending or chained) and self.active is None and not self.closed:
            self._start_response()

    async def on_delta_sent(self, deltas_sent: int) -> None:
        """Apply a mid-response fault scheduled for this point."""
        for fault in self.script.faults:
            if (
                isinstance(fault, Disconnect | GoSilent)
                and fault.after_deltas == deltas_sent
                and fault.after_responses == self.completed_responses
            ):
                await self._apply(fault)

    async def _after_responses(self) -> None:
        for fault in self.script.faults:
            if fault.after_responses != self.completed_responses:
                continue
            if isinstance(fault, SendError) or fault.after_deltas is None:
                await self._apply(fault)
            if self.silent:
                return

    async def _apply(self, fault: Fault) -> None:
        if fault in self.faults_applied:
            return
        self.faults_applied.append(fault)
        logger.info("realtime sim: applying fault %s", fault)
        if isinstance(fault, GoSilent):
            self.silent = True
            if fault.stop_reading:
                self.connection.transport.pause_reading()
        elif isinstance(fault, SendError):
            await self.send(
                events.error_event(fault.code, fault.message, error_type=fault.error_type)
            )
        elif fault.close_code is None:
            self.connection.transport.abort()
            raise ConnectionClosed(None, None)
        else:
            await self.connection.close(fault.close_code, fault.reason)
            raise ConnectionClosed(None, None)
