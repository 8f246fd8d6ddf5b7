"""What the tracker hands the shell to send to Twilio: audio frames and marks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One frame of mu-law 8 kHz audio for a Twilio `media` message.

    `payload` is at most `frame_ms` long (160 bytes at 20 ms); only the last
    frame of an item's audio may be shorter, and it is never padded.
    `generation` is the cancel epoch it belongs to: the shell must drop it if
    `PlayoutTracker.is_live(generation)` turned false while it awaited a send.
    """

    payload: bytes
    generation: int
    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class MarkOut:
    """A Twilio `mark` to send right after the frames that precede it.

    `name` is unique within the tracker; its echo goes to `mark_echoed`.
    """

    name: str
    generation: int


Outbound = AudioFrame | MarkOut
