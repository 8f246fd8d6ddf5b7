"""Where a sample sits in its audio item: a maximal-length sequence in the LSBs of AI audio.

The stand-in service writes bit `k mod PERIOD_SAMPLES` of one fixed m-sequence
(LFSR, x^18 + x^7 + 1) into the LSB of sample k of every audio item it sends.
Every 18 consecutive bits of an m-sequence occur once per period, so any
`WINDOW_SAMPLES` consecutive samples of played audio tell their offset in the
item (18 bits to find it, the rest to check it), however the bridge framed,
paused or resumed the audio. Offsets repeat every `PERIOD_SAMPLES` (about 32.8 s
of audio): in a longer item they are known modulo that.
"""

from __future__ import annotations

from array import array
from functools import lru_cache

from simulators import lsb

DEGREE = 18
PERIOD_SAMPLES = 2**DEGREE - 1
WINDOW_SAMPLES = 24
"""The fewest consecutive samples `read` accepts: 18 bits to locate, 6 to check."""
_TAP = 7  # x^18 + x^7 + 1: s[n] = s[n - 18] ^ s[n - 11]
_CHECK_SAMPLES = 64  # at most this many bits are compared after locating a window
_SILENCE = b"\xff"


@lru_cache(maxsize=1)
def _sequence() -> bytes:
    """One period as ASCII bits, plus its first `_CHECK_SAMPLES` again (reads at the wrap)."""
    bits = bytearray(b"\x00" * (DEGREE - 1) + b"\x01")
    lag = DEGREE - _TAP
    # The recurrence looks back at least `lag` bits: extend it `lag` bits at a time.
    while len(bits) < PERIOD_SAMPLES + _CHECK_SAMPLES:
        n = len(bits)
        older = int.from_bytes(bits[n - DEGREE : n - DEGREE + lag], "big")
        newer = int.from_bytes(bits[n - lag : n], "big")
        bits += (older ^ newer).to_bytes(lag, "big")
    values = bytes(bits[: PERIOD_SAMPLES + _CHECK_SAMPLES])
    return values.translate(bytes.maketrans(b"\x00\x01", b"01"))


@lru_cache(maxsize=1)
def _index() -> array[int]:
    """Offset in the period of every 18-bit window (-1 for all zeros, which never occurs)."""
    bits = _sequence()
    index = array("i", [-1]) * (1 << DEGREE)
    mask = (1 << DEGREE) - 1
    window = int(bits[: DEGREE - 1], 2)
    for offset in range(PERIOD_SAMPLES):
        window = ((window << 1) & mask) | (bits[offset + DEGREE - 1] - 0x30)
        index[window] = offset
    return index


def _bits(start_sample: int, n_samples: int) -> bytes:
    sequence = _sequence()
    offset = start_sample % PERIOD_SAMPLES
    if offset + n_samples <= len(sequence):
        return sequence[offset : offset + n_samples]
    parts = [sequence[offset:PERIOD_SAMPLES]]
    left = n_samples - (PERIOD_SAMPLES - offset)
    while left > 0:
        parts.append(sequence[: min(left, PERIOD_SAMPLES)])
        left -= PERIOD_SAMPLES
    return b"".join(parts)


def stamp(audio: bytes, start_sample: int) -> bytes:
    """`audio`, the samples of an item from `start_sample` on, with their positions written in."""
    return lsb.write(audio, _bits(start_sample, len(audio)))


def read(frame: bytes) -> int | None:
    """The offset, in its item, of `frame`'s first sample; None if it cannot be read.

    The offset is read from the frame's first `WINDOW_SAMPLES` samples, or, in a
    frame that opens with digital silence (0xFF, padding before the item's audio),
    from its first sample after that; it is then negative by the padding. Up to
    `_CHECK_SAMPLES` samples must agree, trailing silence (padding after the
    item's end) left out. Audio whose LSBs were not stamped, or were changed on the
    way (gain, mixing, transcoding), does not read.
    """
    bits = lsb.read(frame)
    lead = len(frame) - len(frame.lstrip(_SILENCE))
    body_end = len(frame.rstrip(_SILENCE))
    # The item's own samples may be 0xFF too (zero, its LSB set): padding is only
    # assumed when the frame does not read as it is.
    for start in dict.fromkeys((0, lead)):
        for end in dict.fromkeys((len(frame), body_end)):
            checked = min(end - start, _CHECK_SAMPLES)
            if checked < WINDOW_SAMPLES:
                continue
            offset = _index()[int(bits[start : start + DEGREE], 2)]
            if (
                offset >= 0
                and bits[start : start + checked] == _sequence()[offset : offset + checked]
            ):
                return offset - start
    return None
