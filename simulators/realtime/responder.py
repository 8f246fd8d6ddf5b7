"""One simulated model response: paced audio and transcript deltas, tool call, cancellation."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from typing import Any, Protocol

from simulators import signals
from simulators.realtime import events
from simulators.realtime.conversation import Conversation, Item
from simulators.realtime.events import Event, EventNames
from simulators.realtime.script import RealtimeScript, Reply

logger = logging.getLogger(__name__)


class ResponseHost(Protocol):
    """What a response needs from its session."""

    names: EventNames
    conversation: Conversation
    script: RealtimeScript

    async def send(self, event: Event, audio_bytes: int | None = None) -> None: ...

    async def on_delta_sent(self, deltas_sent: int) -> None: ...


def delta_durations_ms(audio_ms: int, bounds: tuple[int, int], rng: random.Random) -> list[int]:
    """Split `audio_ms` into varied chunk durations (20 ms multiples within `bounds`)."""
    low, high = (max(20, b // 20 * 20) for b in bounds)
    chunks: list[int] = []
    remaining = audio_ms
    while remaining > 0:
        size = min(remaining, rng.randrange(low, high + 1, 20))
        chunks.append(size)
        remaining -= size
    return chunks


class ResponseRun:
    """Generates one response on its session; `cancel()` ends it the way the service does."""

    def __init__(self, host: ResponseHost, index: int, reply: Reply) -> None:
        self.host = host
        self.index = index
        """1-based index of the response in its session; its tone is derived from it."""
        self.reply = reply
        self.tone = signals.tone_for_response(index)
        self.id = events.new_id("resp")
        self.item_id = events.new_id("item")
        self.status = "in_progress"
        self.cancel_reason: str | None = None
        self.audio_ms_sent = 0
        self._cancelled = asyncio.Event()
        self._item = Item(self.item_id, "message", "assistant", has_audio=True)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self, reason: str) -> None:
        """Stop producing; a few already-produced deltas still go out before `response.done`."""
        if not self._cancelled.is_set():
            self.cancel_reason = reason
            self._cancelled.set()

    async def run(self) -> None:
        host, names = self.host, self.host.names
        script = host.script
        await host.send(
            events.event(
                "response.created", response=events.response_object(self.id, "in_progress", [])
            )
        )
        item = events.assistant_item(self.item_id, "in_progress", [])
        host.conversation.add(self._item)
        await host.send(
            events.event(
                "response.output_item.added", response_id=self.id, output_index=0, item=item
            )
        )
        previous = _previous_id(host.conversation, self.item_id)
        await host.send(events.event(names.item_added, previous_item_id=previous, item=item))
        where = {
            "response_id": self.id,
            "item_id": self.item_id,
            "output_index": 0,
            "content_index": 0,
        }
        await host.send(
            events.event(
                "response.content_part.added", **where, part={"type": "audio", "transcript": ""}
            )
        )
        transcript = await self._stream_audio(where, script)
        self._item.transcript = transcript
        if self.cancelled:
            self.status = "cancelled"
        else:
            self.status = "completed"
        output = await self._finish_message(where, transcript)
        if self.reply.end_call and not self.cancelled:
            output.append(await self._call_end_call())
        details = {"type": "cancelled", "reason": self.cancel_reason} if self.cancelled else None
        await host.send(
            events.event(
                "response.done",
                response=events.response_object(
                    self.id, self.status, output, status_details=details
                ),
            )
        )

    async def _stream_audio(self, where: dict[str, Any], script: RealtimeScript) -> str:
        host, names = self.host, self.host.names
        rng = random.Random(script.seed * 1000 + self.index)
        chunks = delta_durations_ms(self.reply.audio_ms, script.delta_ms_range, rng)
        words = self.reply.transcript.split()
        total_samples = self.reply.audio_ms * signals.BYTES_PER_MS
        loop = asyncio.get_running_loop()
        started = loop.time()
        late_left = script.late_deltas_after_cancel
        words_sent = 0
        for number, chunk_ms in enumerate(chunks, start=1):
            produced_at = started + (self.audio_ms_sent + chunk_ms) / 1000.0 / script.speed
            if self.cancelled or not await self._wait_unless_cancelled(produced_at - loop.time()):
                if late_left <= 0:
                    break
                late_left -= 1
            word_goal = len(words) * (self.audio_ms_sent + chunk_ms) // max(self.reply.audio_ms, 1)
            if word_goal > words_sent:
                text = " ".join(words[words_sent:word_goal])
                await host.send(
                    events.event(
                        names.transcript_delta, **where, delta=(" " if words_sent else "") + text
                    )
                )
                words_sent = word_goal
            audio = signals.tone_audio(
                self.tone,
                self.audio_ms_sent * signals.BYTES_PER_MS,
                chunk_ms * signals.BYTES_PER_MS,
                total_samples,
            )
            self.audio_ms_sent += chunk_ms
            self._item.audio_ms = self.audio_ms_sent
            delta = base64.b64encode(audio).decode("ascii")
            await host.send(events.event(names.audio_delta, **where, delta=delta), len(audio))
            await host.on_delta_sent(number)
        return " ".join(words[:words_sent])

    async def _wait_unless_cancelled(self, delay_s: float) -> bool:
        """Sleep `delay_s`; return False at once if the response is cancelled meanwhile."""
        if delay_s > 0:
            try:
                async with asyncio.timeout(delay_s):
                    await self._cancelled.wait()
            except TimeoutError:
                return True
        return not self.cancelled

    async def _finish_message(self, where: dict[str, Any], transcript: str) -> list[dict[str, Any]]:
        host, names = self.host, self.host.names
        item_status = "incomplete" if self.cancelled else "completed"
        await host.send(events.event(names.audio_done, **where))
        await host.send(events.event(names.transcript_done, **where, transcript=transcript))
        part = {"type": "audio", "transcript": transcript}
        await host.send(events.event("response.content_part.done", **where, part=part))
        content = [{"type": names.output_audio_content, "transcript": transcript}]
        item = events.assistant_item(self.item_id, item_status, content)
        await host.send(
            events.event(
                "response.output_item.done", response_id=self.id, output_index=0, item=item
            )
        )
        if names.item_done is not None:
            previous = _previous_id(host.conversation, self.item_id)
            await host.send(events.event(names.item_done, previous_item_id=previous, item=item))
        return [item]

    async def _call_end_call(self) -> dict[str, Any]:
        host, names = self.host, self.host.names
        item_id, call_id = events.new_id("item"), events.new_id("call")
        arguments = json.dumps(dict(self.reply.end_call_arguments))
        host.conversation.add(Item(item_id, "function_call"))
        pending = events.function_call_item(item_id, "in_progress", call_id, "end_call", "")
        await host.send(
            events.event(
                "response.output_item.added", response_id=self.id, output_index=1, item=pending
            )
        )
        previous = _previous_id(host.conversation, item_id)
        await host.send(events.event(names.item_added, previous_item_id=previous, item=pending))
        where = {"response_id": self.id, "item_id": item_id, "output_index": 1, "call_id": call_id}
        await host.send(
            events.event("response.function_call_arguments.delta", **where, delta=arguments)
        )
        await host.send(
            events.event(
                "response.function_call_arguments.done",
                **where,
                name="end_call",
                arguments=arguments,
            )
        )
        done = events.function_call_item(item_id, "completed", call_id, "end_call", arguments)
        await host.send(
            events.event(
                "response.output_item.done", response_id=self.id, output_index=1, item=done
            )
        )
        if names.item_done is not None:
            await host.send(events.event(names.item_done, previous_item_id=previous, item=done))
        return done


def _previous_id(conversation: Conversation, item_id: str) -> str | None:
    ids = list(conversation.items)
    if item_id not in conversation.items:
        return None
    position = ids.index(item_id)
    return ids[position - 1] if position else None
