"""Audio received from the model and not yet sent: a FIFO re-framed into Twilio frames."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from playout.items import ItemAudio

# Consumed bytes at the front of a segment are dropped once they pass this
# size and half the buffer: amortised O(1) per byte, no slicing of big buffers.
_COMPACT_BYTES = 4096


@dataclass(slots=True, eq=False)
class _Segment:
    """A run of consecutive deltas of one item, in arrival order."""

    item: ItemAudio
    data: bytearray
    read: int = 0

    @property
    def available(self) -> int:
        return len(self.data) - self.read


class PendingAudio:
    """Model audio held locally, handed out as frames in arrival order.

    A frame never spans two items. A trailing partial frame of an item is held
    until more of that item's audio arrives, or the item is done, or audio of
    another item queues behind it (the model moved on); then it goes out
    short, unpadded. `pop_frame(limit)` takes the first part of a frame (a
    hold's last): the rest stays at the front, the next frame's start.
    """

    def __init__(self, frame_bytes: int) -> None:
        self._frame_bytes = frame_bytes
        self._segments: deque[_Segment] = deque()
        self._bytes = 0

    @property
    def held_bytes(self) -> int:
        """Bytes held, including held partial frames."""
        return self._bytes

    def frame_count(self) -> int:
        """Frames the held audio will make (a partial frame counts as one)."""
        frame = self._frame_bytes
        return sum(-(-segment.available // frame) for segment in self._segments)

    def push(self, item: ItemAudio, audio: bytes) -> None:
        """Queue `audio` for `item` behind everything already held."""
        if not audio:
            return
        tail = self._segments[-1] if self._segments else None
        if tail is not None and tail.item is item:
            tail.data += audio
        else:
            self._segments.append(_Segment(item, bytearray(audio)))
        item.pending_bytes += len(audio)
        self._bytes += len(audio)

    def push_front(self, chunks: list[tuple[ItemAudio, bytes]]) -> None:
        """Put audio taken back from Twilio (a pause) in front of everything held, in order."""
        segments = self._segments
        for item, audio in reversed(chunks):
            if not audio:
                continue
            head = segments[0] if segments else None
            if head is not None and head.item is item:
                head.data[: head.read] = audio
                head.read = 0
            else:
                segments.appendleft(_Segment(item, bytearray(audio)))
            item.pending_bytes += len(audio)
            self._bytes += len(audio)

    def take_front(self, size: int) -> list[tuple[ItemAudio, bytes]]:
        """Remove and return up to `size` bytes from the front, in order, with their items
        (audio a pause took back that the caller heard after all)."""
        taken: list[tuple[ItemAudio, bytes]] = []
        segments = self._segments
        while size > 0 and segments:
            head = segments[0]
            part = bytes(head.data[head.read : head.read + size])
            head.read += len(part)
            head.item.pending_bytes -= len(part)
            self._bytes -= len(part)
            size -= len(part)
            if part:
                taken.append((head.item, part))
            if head.available == 0:
                segments.popleft()
        return taken

    def next_frame_size(self) -> int:
        """Bytes of the frame that may go out next; 0 if none (empty, or a held partial)."""
        segments = self._segments
        while segments:
            head = segments[0]
            available = head.available
            if available >= self._frame_bytes:
                return self._frame_bytes
            closed = head.item.done or len(segments) > 1
            if available > 0:
                return available if closed else 0
            if not closed:
                return 0  # kept, so the item's next delta joins it in order
            segments.popleft()
        return 0

    def head_item_done(self) -> bool:
        """Whether the item at the front is complete (no more of its audio will come)."""
        return bool(self._segments) and self._segments[0].item.done

    def next_item(self) -> ItemAudio | None:
        """The item of the next frame, if one may go out."""
        return self._segments[0].item if self.next_frame_size() else None

    def pop_frame(self, limit: int | None = None) -> tuple[ItemAudio, bytes, bool]:
        """Take the next frame, or its first `limit` bytes: (item, payload, whether it
        ends the item's audio).

        "Ends the item's audio" means the item is done and nothing of it is
        left here. Raises `LookupError` if no frame may go out.
        """
        size = self.next_frame_size()
        if size == 0 or (limit is not None and limit <= 0):
            raise LookupError("no frame may go out")
        if limit is not None:
            size = min(size, limit)
        head = self._segments[0]
        payload = bytes(head.data[head.read : head.read + size])
        head.read += size
        if head.read >= _COMPACT_BYTES and head.read * 2 >= len(head.data):
            del head.data[: head.read]
            head.read = 0
        item = head.item
        item.pending_bytes -= size
        self._bytes -= size
        return item, payload, item.done and item.pending_bytes == 0

    def clear(self) -> None:
        """Drop everything held (a cancel)."""
        for segment in self._segments:
            segment.item.pending_bytes = 0
        self._segments.clear()
        self._bytes = 0
