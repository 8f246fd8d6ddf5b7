"""Sans-IO conversation item store: what truncate and delete may act on, and their errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ONLY_MODEL_AUDIO = "Only model output audio messages can be truncated"
# The service counts an item's audio in 50 ms steps when it refuses a truncate past its end.
AUDIO_STEP_MS = 50


def refusal(code: str, audio_end_ms: int, held_ms: int) -> Rejection:
    """A truncate refused with `code`, in the words the service uses for it (seen live):
    `param` is null but for the schema check of a negative `audio_end_ms`."""
    if code == "invalid_value":
        held = held_ms // AUDIO_STEP_MS * AUDIO_STEP_MS
        return Rejection(
            code, f"Audio content of {held}ms is already shorter than {audio_end_ms}ms"
        )
    if code == "integer_below_min_value":
        return Rejection(
            code,
            "Invalid 'audio_end_ms': integer below minimum value. Expected a value >= 0, "
            f"but got {audio_end_ms} instead.",
            "audio_end_ms",
        )
    return Rejection(code, ONLY_MODEL_AUDIO)


@dataclass
class Item:
    """A conversation item as the server tracks it."""

    id: str
    type: str
    role: str | None = None
    has_audio: bool = False
    audio_ms: int = 0
    """Assistant audio generated (sent as deltas) for this item so far."""
    truncated_at_ms: int | None = None
    transcript: str | None = None
    """What the model said in this item, as the service keeps it (a truncate deletes it)."""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """Why a client request on an item was refused: becomes an `error` event."""

    code: str
    message: str
    param: str | None = None


class Conversation:
    """Items in conversation order, with the rules the service applies to them."""

    def __init__(self, held_short_ms: int = 0) -> None:
        self.items: dict[str, Item] = {}
        self.deleted: list[str] = []
        # The service holds this much less of an answer's audio than it streamed
        # (what a refused truncate looks like from outside).
        self.held_short_ms = held_short_ms

    @property
    def last_item_id(self) -> str | None:
        return next(reversed(self.items), None)

    def add(self, item: Item) -> str | None:
        """Append `item`; return the id of the item before it (`previous_item_id`)."""
        previous = self.last_item_id
        self.items[item.id] = item
        return previous

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> Rejection | None:
        """Record a truncation, or say why it is refused."""
        item = self.items.get(item_id)
        if item is None:
            return Rejection(
                "item_truncate_invalid_item_id",
                f"Item with item_id not found: {item_id}",
                "item_id",
            )
        held_ms = max(0, item.audio_ms - self.held_short_ms)
        if audio_end_ms < 0:
            return refusal("integer_below_min_value", audio_end_ms, held_ms)
        if item.role != "assistant" or not item.has_audio or item.audio_ms == 0:
            return refusal("unsupported_content_type", audio_end_ms, held_ms)
        if content_index != 0:
            return Rejection(
                "invalid_value", f"Content index {content_index} is invalid", "content_index"
            )
        if audio_end_ms > held_ms:
            return refusal("invalid_value", audio_end_ms, held_ms)
        item.truncated_at_ms = audio_end_ms
        # The service deletes the transcript of a truncated item, so that no text
        # the caller never heard stays in the model's context.
        item.transcript = None
        return None

    def delete(self, item_id: str) -> Rejection | None:
        """Remove an item, or say why not."""
        if self.items.pop(item_id, None) is None:
            return Rejection(
                "item_delete_invalid_item_id", f"Item with item_id not found: {item_id}", "item_id"
            )
        self.deleted.append(item_id)
        return None
