"""Per-connection record of every event received and sent, with awaitable lookups for tests."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from simulators.waiting import DEFAULT_TIMEOUT_S, Notifier

# Large base64 fields replaced by their decoded byte length when recorded.
_AUDIO_FIELDS = {"input_audio_buffer.append": "audio"}
_DELTA_TYPES = {"response.output_audio.delta", "response.audio.delta"}


@dataclass(frozen=True)
class Recorded:
    """One event with the monotonic time it was received or sent."""

    at: float
    event: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.event.get("type", ""))


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
