"""The caller's words, carried in their audio: a text packet in the LSBs of mu-law bytes.

Real Twilio carries only sound, and the real service hears the words in it. So
the stand-in caller writes what it says into the sound itself, and the stand-in
service's transcription reads it back from the input audio it was sent, whatever
happened to the audio on the way there (a relay, re-framing).

A packet, most significant bit first, one bit per sample:

    sync (16 bits) | length n (8 bits) | n bytes of UTF-8 text | CRC-16 (16 bits)

The CRC (CCITT, initial value 0xFFFF) covers the length and the text, so an empty
packet (a cough: sound without words) is checked too. An utterance carries its
packet back to back from its first sample to its last; a cut copy at the end is
simply not read. A 16-bit check keeps random LSBs (the AI's voice leaking into the
microphone, speech without words) from passing for a packet: about one chance in
2^32 per position.
"""

from __future__ import annotations

import binascii
from functools import lru_cache

from simulators import lsb

MAX_TEXT_BYTES = 255
"""The most UTF-8 bytes one packet carries (its length field is 8 bits)."""

_SYNC = b"0010110111010100"  # 0x2DD4
_LENGTH_BITS = 8
_CRC_BITS = 16
_HEADER_BITS = len(_SYNC) + _LENGTH_BITS


def packet_samples(text: str) -> int:
    """Samples (bits) one packet carrying `text` takes; ValueError if the text is too long."""
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise ValueError(f"a packet carries at most {MAX_TEXT_BYTES} UTF-8 bytes, not {size}")
    return _HEADER_BITS + 8 * size + _CRC_BITS


@lru_cache(maxsize=256)
def _packet(text: str) -> bytes:
    packet_samples(text)  # validates the length
    body = bytes([len(text.encode("utf-8"))]) + text.encode("utf-8")
    crc = binascii.crc_hqx(body, 0xFFFF)
    return _SYNC + _bits(body) + format(crc, f"0{_CRC_BITS}b").encode("ascii")


def _bits(data: bytes) -> bytes:
    return "".join(format(byte, "08b") for byte in data).encode("ascii")


def embed(audio: bytes, text: str, start_sample: int = 0) -> bytes:
    """`audio`, samples [start, start + len) of an utterance, with its packets written in.

    The utterance carries `text`'s packet back to back from its sample 0, so the
    pieces of one utterance embedded one by one equal the whole embedded at once.
    """
    packet = _packet(text)
    offset = start_sample % len(packet)
    repeats = (offset + len(audio)) // len(packet) + 1
    return lsb.write(audio, (packet * repeats)[offset : offset + len(audio)])


def _packets(bits: bytes) -> list[tuple[int, int, str]]:
    """Every valid packet in a stretch of bits: (first bit, bit after its last, text)."""
    found: list[tuple[int, int, str]] = []
    at = bits.find(_SYNC)
    while at >= 0 and at + _HEADER_BITS <= len(bits):
        size = int(bits[at + len(_SYNC) : at + _HEADER_BITS], 2)
        end = at + _HEADER_BITS + 8 * size + _CRC_BITS
        text = _parse(bits, at, size, end) if end <= len(bits) else None
        if text is None:
            at = bits.find(_SYNC, at + 1)
            continue
        found.append((at, end, text))
        at = bits.find(_SYNC, end)
    return found


def _parse(bits: bytes, at: int, size: int, end: int) -> str | None:
    payload_at = at + _HEADER_BITS
    body = bytes([size])
    if size:
        body += int(bits[payload_at : end - _CRC_BITS], 2).to_bytes(size, "big")
    if binascii.crc_hqx(body, 0xFFFF) != int(bits[end - _CRC_BITS : end], 2):
        return None
    try:
        return body[1:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode(audio: bytes) -> str | None:
    """The text of the first valid packet in `audio` ("" for an empty one), None if none."""
    packets = _packets(lsb.read(audio))
    return packets[0][2] if packets else None


def decode_utterances(audio: bytes) -> list[str]:
    """The text of each utterance in `audio`, in order ([] when no packet is found).

    An utterance is a run of packets back to back; a packet that does not start
    where the one before it ended begins another utterance, even with the same text.
    """
    texts: list[str] = []
    run_end = -1
    for start, end, text in _packets(lsb.read(audio)):
        if start != run_end:
            texts.append(text)
        run_end = end
    return texts
