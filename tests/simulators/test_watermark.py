"""The stand-ins' watermarks: the caller's words in their audio, the AI's position in its own."""

from __future__ import annotations

import random

import pytest

from simulators import mulaw, position, signals, watermark

WORDS = "Grüß dich, ça va? 你好 👋"


def speech(ms: int) -> bytes:
    n = ms * signals.BYTES_PER_MS
    return signals.speech_audio(0, n, n)


def tone(tone_number: int, ms: int) -> bytes:
    n = ms * signals.BYTES_PER_MS
    return signals.tone_audio(tone_number, 0, n, n)


@pytest.mark.parametrize("text", ["yes", WORDS, ""])
def test_words_round_trip_through_the_audio(text: str) -> None:
    audio = watermark.embed(speech(800), text)

    assert watermark.decode(audio) == text
    assert watermark.decode_utterances(audio) == [text]
    # The words ride in the LSBs: the sound is the same speech to within one step.
    assert [signals.detect_tone(audio[i : i + 160]) for i in range(0, len(audio), 160)] == [
        signals.UNKNOWN
    ] * 40


def test_audio_without_words_reads_none() -> None:
    assert watermark.decode(speech(2000)) is None
    assert watermark.decode(mulaw.silence(8000)) is None
    assert watermark.decode(position.stamp(tone(1, 2000), 0)) is None
    noise = bytes(random.Random(5).randrange(256) for _ in range(40_000))
    assert watermark.decode(noise) is None
    assert watermark.decode_utterances(noise) == []


def test_an_utterance_embedded_frame_by_frame_is_the_whole_embedded_at_once() -> None:
    whole = speech(600)
    frames = [watermark.embed(whole[i : i + 160], WORDS, i) for i in range(0, len(whole), 160)]

    assert b"".join(frames) == watermark.embed(whole, WORDS)


def test_words_written_after_a_leak_is_mixed_in_survive_it() -> None:
    caller, played = speech(600), position.stamp(tone(2, 600), 0)

    mixed_then_written = watermark.embed(mulaw.mix(caller, played, 0.35), "uh-huh")
    written_then_mixed = mulaw.mix(watermark.embed(caller, "uh-huh"), played, 0.35)

    assert watermark.decode(mixed_then_written) == "uh-huh"
    assert watermark.decode(written_then_mixed) is None


def test_corrupted_words_do_not_read() -> None:
    audio = bytearray(watermark.embed(speech(800), WORDS))
    for i in range(0, len(audio), 37):  # one flipped LSB in every stretch a packet spans
        audio[i] ^= 1

    assert watermark.decode(bytes(audio)) is None
    # A cut copy (the packet's end is missing) is not read either.
    packet = watermark.packet_samples(WORDS)
    assert watermark.decode(watermark.embed(speech(800), WORDS)[: packet - 1]) is None
    assert watermark.decode(watermark.embed(speech(800), WORDS)[:packet]) == WORDS


def test_each_utterance_of_a_stretch_is_read_in_order() -> None:
    first, second = watermark.embed(speech(400), "no"), watermark.embed(speech(500), "no")
    third = watermark.embed(speech(300), "")
    stretch = first + mulaw.silence(800) + second + third + mulaw.silence(400)

    # The same words again are another utterance: they do not continue the packets before.
    assert watermark.decode_utterances(stretch) == ["no", "no", ""]


def test_a_packet_holds_at_most_255_bytes() -> None:
    assert watermark.packet_samples("") == 40
    assert watermark.packet_samples("é") == 40 + 16
    with pytest.raises(ValueError, match="255"):
        watermark.packet_samples("x" * 256)


# --- the position of each sample in its audio item ---------------------------------------


def test_the_sequence_is_maximal_every_window_occurs_once() -> None:
    index = position._index()

    assert sum(1 for offset in index if offset >= 0) == position.PERIOD_SAMPLES
    assert index[0] == -1


def test_any_window_of_24_samples_reads_its_position() -> None:
    item = position.stamp(tone(4, 5000), 0)
    rng = random.Random(11)

    for offset in rng.sample(range(len(item) - 160), 200):
        assert position.read(item[offset : offset + 24]) == offset
        assert position.read(item[offset : offset + 160]) == offset
        assert position.read(item[offset : offset + 23]) is None


def test_positions_survive_any_framing_and_a_resume_from_any_byte() -> None:
    total = 3000 * signals.BYTES_PER_MS
    rng = random.Random(3)
    deltas, done = [], 0
    while done < total:  # the service's varied deltas, each stamped on its own
        n = min(total - done, rng.randrange(320, 1921, 160))
        deltas.append(position.stamp(signals.tone_audio(5, done, n, total), done))
        done += n
    item = b"".join(deltas)
    assert item == position.stamp(signals.tone_audio(5, 0, total, total), 0)

    resume = 12_345  # the bridge re-frames into 160 bytes, resuming mid-frame
    frames = [item[i : i + 160] for i in range(resume, total, 160)]

    assert [position.read(f) for f in frames] == list(range(resume, total, 160))


def test_padding_around_the_item_is_read_past() -> None:
    item = position.stamp(tone(6, 400), 0)

    assert position.read(mulaw.silence(40) + item[:120]) == -40
    assert position.read(item[-100:] + mulaw.silence(60)) == len(item) - 100
    assert position.read(item[-20:] + mulaw.silence(140)) is None  # too little to read


def test_audio_not_stamped_or_changed_on_the_way_does_not_read() -> None:
    item = position.stamp(tone(7, 1000), 0)
    frames = range(0, len(item), 160)

    assert all(position.read(tone(7, 1000)[i : i + 160]) is None for i in frames)
    quieter = mulaw.encode(round(v * 0.9) for v in mulaw.decode(item))
    assert all(position.read(quieter[i : i + 160]) is None for i in frames)
    assert position.read(mulaw.silence(160)) is None


def test_positions_repeat_after_a_period() -> None:
    start = position.PERIOD_SAMPLES - 10
    audio = position.stamp(tone(8, 20), start)

    assert position.read(audio) == start
    assert position.read(audio[15:]) == 5


def test_tone_detection_ignores_the_lsbs() -> None:
    rng = random.Random(9)
    for tone_number in range(1, signals.MAX_TONE + 1):
        audio = tone(tone_number, 400)
        stamped = position.stamp(audio, rng.randrange(10_000))
        noisy = bytes(b ^ rng.getrandbits(1) for b in audio)
        for i in range(0, len(audio), 160):
            expected = signals.detect_tone(audio[i : i + 160])
            assert signals.detect_tone(stamped[i : i + 160]) == expected == tone_number
            assert signals.detect_tone(noisy[i : i + 160]) == expected
