"""What the tracker hands the shell to send to Twilio: audio frames and marks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One frame of mu-law 8 kHz audio for a Twilio `media` message.

    `payload` is at most `frame_ms` long (160 bytes at 20 ms); the last frame
    of an item's audio may be shorter, and so may the frame a hold's `until`
    cuts (its rest goes after the resume, and the frames after it are offset
    by as much): none is ever padded.
    `generation` is the cancel epoch it belongs to; `epoch` the send epoch
    (bumped by every clear the tracker asks for: each cancel and pause). The
    shell must drop it if `PlayoutTracker.is_current(epoch)` turned false
    while it awaited a send (which implies `is_live(generation)` did, too).
    """

    payload: bytes
    generation: int
    response_id: str
    item_id: str
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class MarkOut:
    """A Twilio `mark` to send right after the frames that precede it.

    `name` is unique within the tracker; its echo goes to `mark_echoed`. Like
    a frame, it is dropped unsent once its `epoch` is no longer current.
    """

    name: str
    generation: int
    epoch: int = 0


Outbound = AudioFrame | MarkOut
