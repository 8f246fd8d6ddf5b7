"""A client text frame built in one piece reads back, with websockets' own parser, as sent."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from calls.live.wsframe import client_text_frame


def parsed(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser: Generator[None, None, Frame] = Frame.parse(
        reader.read_exact, mask=True, max_size=None, extensions=[]
    )
    with pytest.raises(StopIteration) as done:
        next(parser)
    frame: Frame = done.value.value
    return frame


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_every_length_encoding_reads_back_as_one_final_masked_text_frame(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    data = client_text_frame(payload)

    frame = parsed(data)

    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)
    assert data[1] & 0x80  # masked, as a client's frames must be


def test_each_frame_has_its_own_masking_key() -> None:
    keys = {client_text_frame(b"{}")[2:6] for _ in range(3000)}  # the pool refills on the way

    assert len(keys) > 2990
