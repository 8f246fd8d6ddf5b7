"""A client's WebSocket text frame (RFC 6455, section 5), built in one piece.

The uplink writes a call's caller audio to its Realtime session 25 times a
second; this builds the frame the socket's own `send` would (FIN, text
opcode, masked as a client must, no extension) without its per-message
machinery. The masking keys are as unpredictable as the library's own
(`os.urandom`), read 1,024 at a time rather than one system call a frame.
"""

from __future__ import annotations

import os
import struct

from websockets.frames import Opcode

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

_FIN_TEXT = 0x80 | Opcode.TEXT.value
_MASKED = 0x80
_KEYS = 1024


class _MaskKeys:
    """Four random bytes at a time, from a pool refilled by one `os.urandom` call."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> bytes:
        if self._at >= len(self._pool):
            self._pool = os.urandom(4 * _KEYS)
            self._at = 0
        key = self._pool[self._at : self._at + 4]
        self._at += 4
        return key


_keys = _MaskKeys()


def client_text_frame(payload: bytes) -> bytes:
    """One unfragmented, masked text frame carrying `payload` (UTF-8 text)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", _FIN_TEXT, _MASKED | length)
    elif length < 65536:
        header = struct.pack("!BBH", _FIN_TEXT, _MASKED | 126, length)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, _MASKED | 127, length)
    key = _keys.next()
    return header + key + apply_mask(payload, key)
