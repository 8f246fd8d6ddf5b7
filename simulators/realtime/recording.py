"""Per-connection record of every event received and sent, with awaitable lookups for tests.

Views for what a bridge tells the model are read from the events received, the
one record: the function call outputs (`function_call_outputs()`), each
`response.create` with its instructions (`response_creates()`), and the tools
the session was configured with (`tool_names()`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from simulators.waiting import DEFAULT_TIMEOUT_S, Notifier

# Large base64 fields replaced by their decoded byte length when recorded.
_AUDIO_FIELDS = {"input_audio_buffer.append": "audio"}
_DELTA_TYPES = {"response.output_audio.delta", "response.audio.delta"}

T = TypeVar("T")


@dataclass(frozen=True)
class Recorded:
    """One event with the monotonic time it was received or sent."""

    at: float
    event: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.event.get("type", ""))


@dataclass(frozen=True)
class FunctionCallOutput:
    """A `function_call_output` item the client created (`conversation.item.create`)."""

    at: float
    """When it was received (`time.monotonic()`)."""
    call_id: str
    output: str
    """The output text as sent (usually JSON)."""
    item_id: str | None = None
    """The item id the client chose, if any."""


@dataclass(frozen=True)
class ResponseCreate:
    """A `response.create` the client sent, accepted or refused."""

    at: float
    instructions: str | None
    """`response.instructions`, None when the client left them out."""
    response: dict[str, Any]
    """The event's `response` object as sent (empty if it had none)."""


def compact(event: dict[str, Any], audio_bytes: int | None) -> dict[str, Any]:
    """The event as recorded: an audio payload string becomes its byte length."""
    event_type = event.get("type")
    if audio_bytes is None:
        return event
    if event_type in _DELTA_TYPES:
        return {**event, "delta": audio_bytes}
    field_name = _AUDIO_FIELDS.get(str(event_type))
    if field_name is not None:
        return {**event, field_name: audio_bytes}
    return event


class SessionRecording:
    """Everything one connection saw, in order, plus input-audio totals for forwarding checks."""

    def __init__(self, notifier: Notifier, *, keep_input_audio: bool = True) -> None:
        self._notifier = notifier
        # Without the audio kept (a load generator), audio events are counted, not listed.
        self._keep_input_audio = keep_input_audio
        self.received: list[Recorded] = []
        self.sent: list[Recorded] = []
        self.input_audio_bytes = 0
        self.input_audio = bytearray()
        """Raw mu-law input audio (only if `keep_input_audio`)."""
        self._input_hash = hashlib.sha256()
        self._cursors: dict[tuple[str, str], int] = {}

    @property
    def input_audio_sha256(self) -> str:
        return self._input_hash.hexdigest()

    def add_input_audio(self, audio: bytes) -> None:
        self.input_audio_bytes += len(audio)
        if self._keep_input_audio:
            self._input_hash.update(audio)
            self.input_audio += audio

    def record_received(self, event: dict[str, Any], audio_bytes: int | None = None) -> None:
        if audio_bytes is not None and not self._keep_input_audio:
            return
        self.received.append(Recorded(time.monotonic(), compact(event, audio_bytes)))
        self._notifier.notify()

    def record_sent(self, event: dict[str, Any], audio_bytes: int | None = None) -> None:
        if audio_bytes is not None and not self._keep_input_audio:
            return
        self.sent.append(Recorded(time.monotonic(), compact(event, audio_bytes)))
        self._notifier.notify()

    def received_of(self, event_type: str) -> list[dict[str, Any]]:
        return [r.event for r in self.received if r.type == event_type]

    def sent_of(self, event_type: str) -> list[dict[str, Any]]:
        return [r.event for r in self.sent if r.type == event_type]

    def sent_types(self) -> list[str]:
        return [r.type for r in self.sent]

    def function_call_outputs(self) -> list[FunctionCallOutput]:
        """Every function call output received, in order."""
        outputs = []
        for record in self.received:
            item = record.event.get("item") if record.type == "conversation.item.create" else None
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                item_id = item.get("id")
                outputs.append(
                    FunctionCallOutput(
                        record.at,
                        str(item.get("call_id", "")),
                        str(item.get("output", "")),
                        str(item_id) if item_id is not None else None,
                    )
                )
        return outputs

    def response_creates(self) -> list[ResponseCreate]:
        """Every `response.create` received, in order (refused ones included)."""
        creates = []
        for record in self.received:
            if record.type != "response.create":
                continue
            response = record.event.get("response")
            response = response if isinstance(response, dict) else {}
            instructions = response.get("instructions")
            text = str(instructions) if instructions is not None else None
            creates.append(ResponseCreate(record.at, text, response))
        return creates

    def tools(self) -> list[dict[str, Any]]:
        """The `tools` of the last `session.update` that set them ([] if none did)."""
        for record in reversed(self.received):
            session = record.event.get("session") if record.type == "session.update" else None
            if isinstance(session, dict) and isinstance(session.get("tools"), list):
                return [tool for tool in session["tools"] if isinstance(tool, dict)]
        return []

    def tool_names(self) -> list[str]:
        """The names of `tools()`, in the order given."""
        return [str(tool.get("name", "")) for tool in self.tools()]

    async def wait_function_call_output(
        self, count: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> FunctionCallOutput:
        """The `count`-th function call output (1-based), once it has been received."""
        return await self._nth(self.function_call_outputs, count, timeout_s)

    async def wait_response_create(
        self, count: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> ResponseCreate:
        """The `count`-th `response.create` (1-based), once it has been received."""
        return await self._nth(self.response_creates, count, timeout_s)

    async def _nth(self, listed: Callable[[], list[T]], count: int, timeout_s: float) -> T:
        def find() -> T | None:
            found = listed()
            return found[count - 1] if len(found) >= count else None

        return await self._notifier.wait_for(find, timeout_s)

    async def next_received(
        self, event_type: str, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> dict[str, Any]:
        """The next received event of `event_type` not yet returned by this method."""
        return (await self._next("received", event_type, timeout_s)).event

    async def next_sent(
        self, event_type: str, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> dict[str, Any]:
        """The next sent event of `event_type` not yet returned by this method."""
        return (await self._next("sent", event_type, timeout_s)).event

    async def _next(self, direction: str, event_type: str, timeout_s: float) -> Recorded:
        log = self.received if direction == "received" else self.sent
        key = (direction, event_type)

        def find() -> Recorded | None:
            for index in range(self._cursors.get(key, 0), len(log)):
                if log[index].type == event_type:
                    self._cursors[key] = index + 1
                    return log[index]
            self._cursors[key] = len(log)
            return None

        return await self._notifier.wait_for(find, timeout_s)
