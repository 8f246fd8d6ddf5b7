"""One simulated model response: paced audio and transcript deltas, tool calls, cancellation.

The events and their order follow captures of the real service: `response.created`
and `rate_limits.updated` first; per audio item, `output_item.added`, the item's
`conversation.item.added`, `content_part.added`, the transcript and audio deltas,
then every level closed (`output_audio.done`, transcript done, `content_part.done`,
`output_item.done`, `conversation.item.done`); per function call after them,
`output_item.added` and `conversation.item.added` (arguments ""), the arguments
streamed a token a `function_call_arguments.delta`, `function_call_arguments.done`,
`output_item.done` and `conversation.item.done`; `response.done` last, with the
whole output, status details and usage. A response may hold several audio items
(`Reply.more_items`); a cancelled one closes the item it was in (`incomplete`)
and starts no other item, audio or function call.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from simulators import position, signals
from simulators.realtime import events
from simulators.realtime.conversation import Conversation, Item
from simulators.realtime.events import Event, EventNames
from simulators.realtime.script import Part, RealtimeScript, Reply, ToolCall

logger = logging.getLogger(__name__)

ARGUMENT_DELTA_MS = 20
"""Model time each streamed piece of a function call's arguments takes."""
# A word, or a run of punctuation, with the spaces before it: the pieces the
# service streams a function call's arguments in (`{"`, `reason`, `":"`, ...).
_ARGUMENT_TOKEN = re.compile(r"\s*[A-Za-z0-9]+|\s*[^A-Za-z0-9\s]+|\s+")


class ResponseHost(Protocol):
    """What a response needs from its session."""

    names: EventNames
    conversation: Conversation
    script: RealtimeScript

    async def send(self, event: Event, audio_bytes: int | None = None) -> None: ...

    async def on_delta_sent(self, deltas_sent: int) -> None: ...

    async def on_response_started(self) -> None: ...


def argument_chunks(arguments: str) -> list[str]:
    """`arguments` cut into the pieces its `function_call_arguments.delta` events carry."""
    return _ARGUMENT_TOKEN.findall(arguments)


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


class _AudioItem:
    """One audio item of a response as it is generated."""

    def __init__(self, part: Part, tone: int, output_index: int) -> None:
        self.part = part
        self.tone = tone
        self.output_index = output_index
        self.id = events.new_id("item")
        self.item = Item(self.id, "message", "assistant", has_audio=True)
        self.transcript = ""
        self.status = "in_progress"
        self.final: dict[str, Any] | None = None  # its `output_item.done` shape, once closed


class ResponseRun:
    """Generates one response on its session; `cancel()` ends it the way the service does."""

    def __init__(self, host: ResponseHost, index: int, reply: Reply) -> None:
        self.host = host
        self.index = index
        """1-based index of the response in its session; its tone is derived from it."""
        self.reply = reply
        self.tone = signals.tone_for_response(index)
        self.id = events.new_id("resp")
        self.items = [
            _AudioItem(part, signals.tone_for_item(index, number), number - 1)
            for number, part in enumerate(reply.parts, start=1)
        ]
        self.item_id = self.items[0].id if self.items else None
        """The first audio item's id (None: a response of function calls only)."""
        self.status = "in_progress"
        self.cancel_reason: str | None = None
        self.audio_ms_sent = 0
        self._cancelled = asyncio.Event()
        self._deltas_sent = 0
        self._late_left = host.script.late_deltas_after_cancel

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self, reason: str) -> None:
        """Stop producing; a few already-produced deltas still go out before `response.done`."""
        if not self._cancelled.is_set():
            self.cancel_reason = reason
            self._cancelled.set()

    async def run(self) -> None:
        host = self.host
        await host.send(
            events.event(
                "response.created", response=events.response_object(self.id, "in_progress", [])
            )
        )
        await host.send(events.rate_limits())
        await host.on_response_started()
        rng = random.Random(host.script.seed * 1000 + self.index)
        opened: list[_AudioItem] = []
        unclosed: _AudioItem | None = None
        thinking_s = self.reply.latency_ms / 1000.0
        # Cancelled while the model was still thinking: nothing of it was made.
        items = self.items if await self._wait_unless_cancelled(thinking_s) else []
        for item in items:
            if self.cancelled and opened:
                break  # a cancelled response starts no other item
            await self._open(item)
            opened.append(item)
            close_before: Callable[[], Awaitable[None]] | None = None
            if unclosed is not None:
                late = unclosed
                close_before = lambda late=late: self._close(late)  # noqa: E731
            await self._stream_audio(item, rng, after_first_delta=close_before)
            unclosed = None
            if self.reply.late_item_done and item is not self.items[-1] and not self.cancelled:
                unclosed = item  # closed once the next item's first delta is out
            else:
                await self._close(item)
        if unclosed is not None:
            await self._close(unclosed)
        output = [item.final for item in opened if item.final is not None]
        for call in self.reply.calls:
            if self.cancelled:
                break  # a call not begun when the response was cancelled is never made
            output.append(await self._call(call, len(output)))
        self.status = "cancelled" if self.cancelled else "completed"
        details = {"type": "cancelled", "reason": self.cancel_reason} if self.cancelled else None
        transcript = " ".join(item.transcript for item in opened)
        await host.send(
            events.event(
                "response.done",
                response=events.response_object(
                    self.id,
                    self.status,
                    output,
                    status_details=details,
                    usage=events.usage(self.audio_ms_sent, transcript),
                ),
            )
        )

    def _where(self, item: _AudioItem) -> dict[str, Any]:
        return {
            "response_id": self.id,
            "item_id": item.id,
            "output_index": item.output_index,
            "content_index": 0,
        }

    async def _open(self, item: _AudioItem) -> None:
        host, names = self.host, self.host.names
        shape = events.assistant_item(names, item.id, "in_progress", [])
        previous = host.conversation.add(item.item)
        await host.send(
            events.event(
                "response.output_item.added",
                response_id=self.id,
                output_index=item.output_index,
                item=shape,
            )
        )
        await host.send(events.event(names.item_added, previous_item_id=previous, item=shape))
        await host.send(
            events.event(
                "response.content_part.added",
                **self._where(item),
                part={"type": "audio", "transcript": ""},
            )
        )

    async def _stream_audio(
        self,
        item: _AudioItem,
        rng: random.Random,
        after_first_delta: Callable[[], Awaitable[None]] | None,
    ) -> None:
        host, names, script = self.host, self.host.names, self.host.script
        where = self._where(item)
        part = item.part
        chunks = delta_durations_ms(part.audio_ms, script.delta_ms_range, rng)
        words = part.transcript.split()
        total_samples = part.audio_ms * signals.BYTES_PER_MS
        loop = asyncio.get_running_loop()
        started = loop.time() + part.first_audio_after_ms / 1000.0 / script.speed
        if part.first_audio_after_ms and not await self._wait_unless_cancelled(
            started - loop.time()
        ):
            chunks = []  # cancelled before any of it was produced: nothing late to send
        item_ms = 0
        words_sent = 0
        for chunk_ms in chunks:
            produced_at = started + (item_ms + chunk_ms) / 1000.0 / script.speed
            if self.cancelled or not await self._wait_unless_cancelled(produced_at - loop.time()):
                if self._late_left <= 0:
                    break
                self._late_left -= 1
            word_goal = len(words) * (item_ms + chunk_ms) // max(part.audio_ms, 1)
            if word_goal > words_sent:
                text = " ".join(words[words_sent:word_goal])
                delta = {"delta": (" " if words_sent else "") + text}
                if names.obfuscated:
                    delta["obfuscation"] = events.obfuscation(rng)
                await host.send(events.event(names.transcript_delta, **where, **delta))
                words_sent = word_goal
            offset = item_ms * signals.BYTES_PER_MS
            n_samples = chunk_ms * signals.BYTES_PER_MS
            # Every sample says where it is in the item (`simulators.position`).
            audio = position.stamp(
                signals.tone_audio(item.tone, offset, n_samples, total_samples), offset
            )
            item_ms += chunk_ms
            self.audio_ms_sent += chunk_ms
            item.item.audio_ms = item_ms
            delta_b64 = base64.b64encode(audio).decode("ascii")
            await host.send(events.event(names.audio_delta, **where, delta=delta_b64), len(audio))
            self._deltas_sent += 1
            await host.on_delta_sent(self._deltas_sent)
            if after_first_delta is not None:
                await after_first_delta()
                after_first_delta = None
        if after_first_delta is not None:  # the item had no audio at all
            await after_first_delta()
        item.transcript = " ".join(words[:words_sent])
        item.item.transcript = item.transcript
        item.status = "incomplete" if self.cancelled else "completed"

    async def _wait_unless_cancelled(self, delay_s: float) -> bool:
        """Sleep `delay_s`; return False at once if the response is cancelled meanwhile."""
        if delay_s > 0:
            try:
                async with asyncio.timeout(delay_s):
                    await self._cancelled.wait()
            except TimeoutError:
                return True
        return not self.cancelled

    async def _close(self, item: _AudioItem) -> None:
        """Every level of the item closed, innermost first, as the service does."""
        host, names = self.host, self.host.names
        where = self._where(item)
        await host.send(events.event(names.audio_done, **where))
        await host.send(events.event(names.transcript_done, **where, transcript=item.transcript))
        part = {"type": "audio", "transcript": item.transcript}
        await host.send(events.event("response.content_part.done", **where, part=part))
        content = [{"type": names.output_audio_content, "transcript": item.transcript}]
        shape = events.assistant_item(names, item.id, item.status, content)
        await host.send(
            events.event(
                "response.output_item.done",
                response_id=self.id,
                output_index=item.output_index,
                item=shape,
            )
        )
        if names.item_done is not None:
            previous = _previous_id(host.conversation, item.id)
            await host.send(events.event(names.item_done, previous_item_id=previous, item=shape))
        item.final = shape

    async def _call(self, call: ToolCall, output_index: int) -> dict[str, Any]:
        """One function call item, streamed as the service streams it; return its final shape.

        A cancel while its arguments stream closes it with what was streamed,
        the item `incomplete` (the service sends `function_call_arguments.done`
        for an interrupted call too).
        """
        host, names, script = self.host, self.host.names, self.host.script
        item_id, call_id = events.new_id("item"), call.call_id or events.new_id("call")
        pending = events.function_call_item(names, item_id, "in_progress", call.name, call_id, "")
        item = Item(item_id, "function_call", data=pending)
        previous = host.conversation.add(item)
        await host.send(
            events.event(
                "response.output_item.added",
                response_id=self.id,
                output_index=output_index,
                item=pending,
            )
        )
        await host.send(events.event(names.item_added, previous_item_id=previous, item=pending))
        where = {
            "response_id": self.id,
            "item_id": item_id,
            "output_index": output_index,
            "call_id": call_id,
        }
        streamed = ""
        loop = asyncio.get_running_loop()
        started = loop.time()
        for number, chunk in enumerate(argument_chunks(call.arguments_text), start=1):
            produced_at = started + number * ARGUMENT_DELTA_MS / 1000.0 / script.speed
            if not await self._wait_unless_cancelled(produced_at - loop.time()):
                break
            await host.send(
                events.event("response.function_call_arguments.delta", **where, delta=chunk)
            )
            streamed += chunk
        status = "incomplete" if self.cancelled else "completed"
        await host.send(
            events.event(
                "response.function_call_arguments.done",
                **where,
                name=call.name,
                arguments=streamed,
            )
        )
        done = events.function_call_item(names, item_id, status, call.name, call_id, streamed)
        item.data = done
        await host.send(
            events.event(
                "response.output_item.done",
                response_id=self.id,
                output_index=output_index,
                item=done,
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
