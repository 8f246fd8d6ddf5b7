"""The least significant bit of each mu-law byte: the side channel the stand-ins' watermarks use.

Bits travel as ASCII text (`b"0"` and `b"1"`, one per sample), so that a stretch
of them can be searched with `bytes.find` and parsed with `int(bits, 2)`. Every
operation here runs over whole buffers in C (`bytes.translate`, big integers):
the stand-ins mark every frame of hundreds of calls.
"""

from __future__ import annotations

_BIT_OF = bytes(0x30 | (b & 1) for b in range(256))
_CLEARED = bytes(b & 0xFE for b in range(256))
_SET = bytes(b | 1 for b in range(256))
_VALUE_OF = bytes.maketrans(b"01", b"\x00\x01")


def read(audio: bytes) -> bytes:
    """The LSB of each mu-law byte of `audio`, as ASCII `0`/`1` (one per sample)."""
    return audio.translate(_BIT_OF)


def write(audio: bytes, bits: bytes) -> bytes:
    """`audio` with the LSB of byte i replaced by ASCII bit i of `bits` (same length)."""
    if len(bits) != len(audio):
        raise ValueError(f"{len(bits)} bits for {len(audio)} samples")
    if not audio:
        return b""
    cleared = int.from_bytes(audio.translate(_CLEARED), "big")
    values = int.from_bytes(bits.translate(_VALUE_OF), "big")
    return (cleared | values).to_bytes(len(audio), "big")


def ignored(audio: bytes) -> bytes:
    """`audio` with every LSB set: what is left once the side channel is ignored.

    Setting (rather than clearing) keeps digital silence (0xFF) as it is, and moves
    every other sample by at most one quantisation step, towards zero.
    """
    return audio.translate(_SET)
