"""mu-law codec values, tone synthesis and detection, and the sans-IO VAD."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators import mulaw, signals
from simulators.realtime.vad import EnergyVad, SpeechStarted, SpeechStopped, VadConfig


def test_mulaw_known_values() -> None:
    assert mulaw.DECODE_TABLE[0xFF] == 0
    assert mulaw.DECODE_TABLE[0x7F] == 0
    assert mulaw.DECODE_TABLE[0x00] == -32124
    assert mulaw.DECODE_TABLE[0x80] == 32124
    assert len(mulaw.DECODE_TABLE) == 256
    assert mulaw.encode([0]) == b"\xff"
    assert mulaw.encode([32767, -32768]) == b"\x80\x00"


def test_every_byte_round_trips() -> None:
    data = bytes(range(256))
    # 0x7F and 0xFF both decode to 0, which encodes to 0xFF.
    expected = data.replace(b"\x7f", b"\xff")
    assert mulaw.encode(mulaw.decode(data)) == expected


@given(st.integers(min_value=-32768, max_value=32767))
def test_round_trip_within_quantisation_error(sample: int) -> None:
    decoded = mulaw.decode(mulaw.encode([sample]))[0]
    # mu-law steps double per segment: the error stays within ~1/16 of the magnitude.
    assert abs(decoded - max(min(sample, 32124), -32124)) <= max(8, abs(sample) // 16)


@pytest.mark.parametrize("tone", [1, 2, 7, 15, signals.MAX_TONE])
def test_tone_detected_in_every_frame(tone: int) -> None:
    total = 4000
    audio = signals.tone_audio(tone, 0, total, total)
    frames = [audio[i : i + 160] for i in range(0, total, 160)]
    assert [signals.detect_tone(f) for f in frames] == [tone] * len(frames)


def test_tone_chunks_concatenate_to_the_whole_utterance() -> None:
    total = 3200
    whole = signals.tone_audio(3, 0, total, total)
    parts = b"".join(signals.tone_audio(3, s, 320, total) for s in range(0, total, 320))
    assert parts == whole


def test_partial_frames_silence_and_speech() -> None:
    audio = signals.tone_audio(4, 0, 1600, 1600)
    assert signals.detect_tone(audio[:80] + mulaw.silence(80)) == 4
    assert signals.detect_tone(mulaw.silence(160)) == signals.SILENCE
    speech = signals.speech_audio(0, 1600, 1600)
    assert {signals.detect_tone(speech[i : i + 160]) for i in range(0, 1600, 160)} == {
        signals.UNKNOWN
    }


def test_tone_numbering_wraps() -> None:
    assert signals.tone_for_response(1) == 1
    assert signals.tone_for_response(signals.MAX_TONE + 1) == 1
    assert len({signals.tone_frequency_hz(t) for t in range(1, signals.MAX_TONE + 1)}) == 30


def test_vad_reports_onset_with_padding_and_end_with_silence() -> None:
    vad = EnergyVad(VadConfig(prefix_padding_ms=300, silence_duration_ms=400, detect_ms=160))
    speech_ms = 600
    audio = (
        mulaw.silence(500 * 8)
        + signals.speech_audio(0, speech_ms * 8, speech_ms * 8)
        + mulaw.silence(1000 * 8)
    )
    decisions = []
    for i in range(0, len(audio), 123):  # odd chunking must not matter
        decisions += vad.feed(audio[i : i + 123])
    assert decisions == [SpeechStarted(200), SpeechStopped(500 + 600 + 400)]


def test_vad_ignores_a_blip_shorter_than_detection() -> None:
    vad = EnergyVad(VadConfig(detect_ms=160))
    blip = signals.speech_audio(0, 100 * 8, 100 * 8)
    assert vad.feed(mulaw.silence(800) + blip + mulaw.silence(8000)) == []
