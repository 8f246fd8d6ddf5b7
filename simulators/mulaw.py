"""G.711 mu-law codec (8-bit mu-law <-> 16-bit linear PCM), pure Python."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

SILENCE_BYTE = 0xFF
_BIAS = 0x84
_CLIP = 32635


def _decode_byte(byte: int) -> int:
    inverted = ~byte & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if inverted & 0x80 else magnitude


def _encode_sample(sample: int) -> int:
    sign = 0
    if sample < 0:
        sign = 0x80
        sample = -sample
    biased = min(sample, _CLIP) + _BIAS
    exponent = min(max(biased.bit_length() - 8, 0), 7)
    mantissa = (biased >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


DECODE_TABLE: tuple[int, ...] = tuple(_decode_byte(b) for b in range(256))
"""Linear value of every mu-law byte, indexed by the byte."""

# Indexed by sample + 32768: one lookup per sample keeps bulk encoding cheap.
_ENCODE_TABLE = bytes(_encode_sample(s) for s in range(-32768, 32768))


def decode(data: bytes) -> list[int]:
    """Decode mu-law bytes into 16-bit linear samples."""
    table = DECODE_TABLE
    return [table[b] for b in data]


def encode_sample(sample: int) -> int:
    """Encode one linear sample (clipped to 16 bits) into a mu-law byte."""
    return _ENCODE_TABLE[min(max(int(sample), -32768), 32767) + 32768]


def encode(samples: Iterable[int] | Sequence[int]) -> bytes:
    """Encode 16-bit linear samples (clipped) into mu-law bytes."""
    table = _ENCODE_TABLE
    return bytes(table[min(max(int(s), -32768), 32767) + 32768] for s in samples)


def silence(n_bytes: int) -> bytes:
    """Return `n_bytes` of mu-law digital silence."""
    return bytes([SILENCE_BYTE]) * n_bytes


@lru_cache(maxsize=16)
def _scaled(gain: float) -> tuple[int, ...]:
    return tuple(round(gain * value) for value in DECODE_TABLE)


def mix(audio: bytes, other: bytes, gain: float) -> bytes:
    """`audio` + `gain` x `other` (same length), mixed in linear PCM, clipped, re-encoded."""
    if len(other) != len(audio):
        raise ValueError(f"cannot mix {len(other)} samples into {len(audio)}")
    table, scaled = DECODE_TABLE, _scaled(gain)
    return encode([table[a] + scaled[b] for a, b in zip(audio, other, strict=True)])
