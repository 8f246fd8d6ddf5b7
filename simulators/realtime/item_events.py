"""Handlers for the client's `conversation.item.*` events (create, truncate, delete, retrieve)."""

from __future__ import annotations

from typing import Any, Protocol

from simulators.realtime import events
from simulators.realtime.conversation import Conversation, Item, Rejection, refusal
from simulators.realtime.events import Event, EventNames
from simulators.realtime.recording import SessionRecording


class ItemHost(Protocol):
    """What the handlers need from their session."""

    names: EventNames
    conversation: Conversation
    recording: SessionRecording
    truncate_refusals: list[str]

    async def send(self, event: Event, audio_bytes: int | None = None) -> None: ...

    async def error(self, code: str, message: str, *, param: str | None = None) -> None: ...


class ItemEvents:
    """Applies item events to the session's conversation and answers them."""

    def __init__(self, host: ItemHost) -> None:
        self.host = host

    async def _reject(self, rejection: Rejection) -> None:
        await self.host.error(rejection.code, rejection.message, param=rejection.param)

    async def create(self, payload: dict[str, Any]) -> None:
        """Add the item and echo it (`conversation.item.added`, then `.done` in GA).

        No response starts for it, a tool's result included: the client asks
        for one with `response.create`. A `function_call_output` whose `call_id`
        names no function call of the session is accepted: the API reference
        says the service checks it, but no capture shows its refusal (code,
        message) to copy.
        """
        self.host.recording.record_received(payload)
        names = self.host.names
        item = dict(payload["item"])
        if item.get("type") == "function_call_output":
            output = item["output"]
            if not isinstance(output, str):
                raise TypeError("item.output must be a string")
            item = events.function_call_output_item(
                names, str(item.get("id") or events.new_id("item")), str(item["call_id"]), output
            )
        else:
            item.setdefault("id", events.new_id("item"))
            if names.item_object:  # GA items carry no `object` key
                item.setdefault("object", "realtime.item")
            item.setdefault("status", "completed")
        previous = self.host.conversation.add(
            Item(item["id"], str(item["type"]), item.get("role"), data=item)
        )
        await self.host.send(
            events.event(self.host.names.item_added, previous_item_id=previous, item=item)
        )
        if self.host.names.item_done is not None:
            await self.host.send(
                events.event(self.host.names.item_done, previous_item_id=previous, item=item)
            )

    async def truncate(self, payload: dict[str, Any]) -> None:
        self.host.recording.record_received(payload)
        item_id, index = str(payload["item_id"]), int(payload.get("content_index", 0))
        audio_end_ms = int(payload["audio_end_ms"])
        if self.host.truncate_refusals:
            item = self.host.conversation.items.get(item_id)
            held_ms = min(audio_end_ms - 1, item.audio_ms if item else 0)
            await self._reject(refusal(self.host.truncate_refusals.pop(0), audio_end_ms, held_ms))
            return
        rejection = self.host.conversation.truncate(item_id, index, audio_end_ms)
        if rejection is not None:
            await self._reject(rejection)
            return
        await self.host.send(
            events.event(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=index,
                audio_end_ms=audio_end_ms,
            )
        )

    async def delete(self, payload: dict[str, Any]) -> None:
        self.host.recording.record_received(payload)
        item_id = str(payload["item_id"])
        rejection = self.host.conversation.delete(item_id)
        if rejection is not None:
            await self._reject(rejection)
            return
        await self.host.send(events.event("conversation.item.deleted", item_id=item_id))

    async def retrieve(self, payload: dict[str, Any]) -> None:
        self.host.recording.record_received(payload)
        item = self.host.conversation.items.get(str(payload["item_id"]))
        if item is None:
            await self.host.error(
                "item_retrieve_invalid_item_id", "Item not found", param="item_id"
            )
            return
        data = item.data or {"id": item.id, "type": item.type, "role": item.role}
        await self.host.send(events.event("conversation.item.retrieved", item=data))
