"""The audio sent to Twilio, by axis position: kept to resend what a pause took back, and to
say what the caller heard when."""

from __future__ import annotations

import math

from playout.config import BYTES_PER_SECOND
from playout.estimate import Stretch

#: mu-law silence (the code of a zero sample).
SILENCE = 0xFF
# Float time arithmetic lands a hair off whole samples and bytes: count those as reached.
_SLACK = 1e-6


class SentAudio:
    """The latest bytes of the sent-audio axis, up to its end, in one buffer.

    The owner says what may go (`forget_before`) once the buffer outgrows
    `limit_bytes`: amortised, no slicing on every frame.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._data = bytearray()
        self._start = 0

    @property
    def start(self) -> int:
        """The first axis position kept."""
        return self._start

    @property
    def end(self) -> int:
        """Axis position just after the last byte sent."""
        return self._start + len(self._data)

    @property
    def oversized(self) -> bool:
        return len(self._data) > self.limit_bytes

    def append(self, payload: bytes) -> None:
        """`payload` was sent, at the end of the axis."""
        self._data += payload

    def take_back(self, pos: int) -> bytes:
        """Remove and return the bytes from axis `pos` on (a pause: they go back to pending)."""
        if pos < self._start:
            raise ValueError(f"axis position {pos} is no longer kept (from {self._start})")
        offset = pos - self._start
        taken = bytes(self._data[offset:])
        del self._data[offset:]
        return taken

    def forget_before(self, pos: int) -> None:
        """Nothing will ask for the bytes before axis `pos` any more."""
        drop = min(pos, self.end) - self._start
        if drop > 0:
            del self._data[:drop]
            self._start += drop

    def render(self, lines: list[Stretch], start: float, count: int) -> bytes:
        """`count` samples from `start`: the byte playing at each sample time, by `lines`.

        `lines` are `HeardEstimate.lines`: within each, consecutive samples
        play consecutive axis bytes, so each is one slice; silence where the
        player is dry, outside the lines, or before the bytes kept.
        """
        out = bytearray([SILENCE]) * count
        for since, until, line, cap in lines:
            if line >= cap:
                continue
            first_k = max(0, math.ceil((since - start) * BYTES_PER_SECOND - _SLACK))
            end_k = min(count, math.ceil((until - start) * BYTES_PER_SECOND - _SLACK))
            if first_k >= end_k:
                continue
            # Sample k plays byte floor(line + (start + k / rate - since) x rate).
            first_pos = math.floor(line + (start - since) * BYTES_PER_SECOND + first_k + _SLACK)
            low = max(first_pos, self._start)
            high = min(first_pos + end_k - first_k, cap, self.end)
            if low < high:
                at = first_k + low - first_pos
                out[at : at + high - low] = self._data[low - self._start : high - self._start]
        return bytes(out)
