"""Per-response and per-item audio bookkeeping records (mutable, internal)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from playout.config import BYTES_PER_MS
from playout.reports import Truncation


@dataclass(slots=True, eq=False)
class AxisRun:
    """A stretch [start, end) of the sent-audio axis (bytes) occupied by one item."""

    start: int
    end: int
    item: ItemAudio


@dataclass(slots=True, eq=False)
class ItemAudio:
    """One output item's audio: received, held, sent, and where it lies on the axis.

    Identity matters (`eq=False`): pending segments and axis runs point at
    the same record.
    """

    item_id: str
    response_id: str
    generation: int
    received_bytes: int = 0
    pending_bytes: int = 0
    sent_bytes: int = 0
    # The answer's next item began: audio of this one that comes after is never played.
    superseded: bool = False
    late_bytes: int = 0
    # The model declared its audio complete (audio_done or response_done), or moved on.
    done: bool = False
    runs: list[AxisRun] = field(default_factory=list)

    @property
    def axis_end(self) -> int:
        """Axis position just after this item's last sent byte (0 if none sent)."""
        return self.runs[-1].end if self.runs else 0

    def heard_bytes(self, heard_pos: int) -> int:
        """Bytes of this item lying before axis position `heard_pos`."""
        total = 0
        for run in self.runs:
            if heard_pos <= run.start:
                break
            total += min(heard_pos, run.end) - run.start
        return total


@dataclass(slots=True, eq=False)
class ResponseAudio:
    """One model response: its generation, and how much audio it produced."""

    response_id: str
    generation: int
    received_bytes: int = 0
    done: bool = False
    items: list[ItemAudio] = field(default_factory=list)


def judge_items(
    items: list[ItemAudio],
    heard_pos: int,
    playing: ItemAudio | None,
    generating: Collection[str] = (),
) -> tuple[Truncation | None, tuple[str, ...], tuple[str, ...]]:
    """At a cancel: the item to truncate to what was heard, the unheard ones to delete, and
    those of the same answers heard whole (kept as they are), each in first-audio order.

    `heard_pos` is the axis position heard at the cancel; `playing` the item
    of its last heard byte. Items whose audio was complete and fully heard
    need neither truncate nor delete; they are kept as part of a cut answer
    when another item of their answer is truncated or deleted, or their answer
    (in `generating`) was still being generated. An item heard for less than 1 ms is
    deleted: none of it was said, and a truncate to 0 ms is refused for an
    item whose audio the model has not counted yet. Should two unfinished items
    both have been heard (only if their audio interleaved), the playing one
    is truncated.
    """
    truncate: Truncation | None = None
    truncated: ItemAudio | None = None
    deletes: list[ItemAudio] = []
    whole: list[ItemAudio] = []
    for item in items:
        if item.done and item.pending_bytes == 0 and item.axis_end <= heard_pos:
            whole.append(item)
            continue
        heard_ms = item.heard_bytes(heard_pos) // BYTES_PER_MS
        if heard_ms == 0:
            deletes.append(item)
        elif truncate is None or item is playing:
            truncate, truncated = Truncation(item.item_id, heard_ms), item
    # Earlier answers of the generation, heard whole before this one, are not its part.
    cut = {item.response_id for item in [*deletes, *([truncated] if truncated else [])]}
    cut.update(generating)
    kept = tuple(item.item_id for item in whole if item.response_id in cut)
    return truncate, tuple(item.item_id for item in deletes), kept
