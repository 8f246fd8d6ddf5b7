"""The caller's sounds: words in the audio, coughs and line noise, a speakerphone's leak."""

from __future__ import annotations

import base64
import itertools

import pytest
from websockets.asyncio.server import ServerConnection

from simulators import mulaw, position, signals, watermark
from simulators.realtime import RealtimeScript, RealtimeSimulator
from simulators.realtime.vad import (
    EnergyVad,
    SpeechStarted,
    SpeechStopped,
    VadConfig,
    threshold_rms,
)
from simulators.twilio import (
    CallerScript,
    Leak,
    Noise,
    Silence,
    SpeakWhenHeard,
    Speech,
    Timeline,
)
from simulators.twilio.microphone import Microphone
from simulators.twilio.playback import Playback
from tests.simulators.fake_app import FakeApp, media
from tests.simulators.realtime_helpers import (
    append_audio,
    recv_until,
    sdk_connection,
    start_session,
    transcribing_session,
)
from tests.simulators.test_twilio_caller import make_caller

SILENT = mulaw.silence(signals.FRAME_BYTES)


def windows_rms(audio: bytes) -> list[float]:
    return [signals.rms(mulaw.decode(audio[i : i + 160])) for i in range(0, len(audio), 160)]


def zero_crossings(frame: bytes) -> int:
    samples = mulaw.decode(frame)
    return sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))


@pytest.mark.parametrize("kind", ["cough", "noise"])
def test_noises_are_loud_broadband_and_deterministic(kind: signals.NoiseKind) -> None:
    n = 400 * signals.BYTES_PER_MS
    audio = signals.noise_audio(kind, 0, n, n)

    assert audio == b"".join(signals.noise_audio(kind, i, 160, n) for i in range(0, n, 160))
    # Well above the VAD's -30 dBFS through the burst (its soft edges aside).
    assert min(windows_rms(audio)[1:-1]) > 2 * threshold_rms(0.5)
    frames = [audio[i : i + 160] for i in range(0, n, 160)]
    assert {signals.detect_tone(f) for f in frames} == {signals.UNKNOWN}
    # Broadband: it crosses zero far more often than any voice or response tone does.
    assert min(zero_crossings(f) for f in frames) > 50


def test_a_cough_attacks_sharply_and_decays_and_line_noise_is_steady() -> None:
    n = 400 * signals.BYTES_PER_MS
    cough = windows_rms(signals.noise_audio("cough", 0, n, n))
    assert cough[0] > 0.8 * max(cough)
    assert cough[-2] < 0.35 * max(cough)
    quarters = [sum(cough[i : i + 5]) for i in range(0, 20, 5)]
    assert quarters == sorted(quarters, reverse=True)
    line = windows_rms(signals.noise_audio("noise", 0, n, n))[2:-2]
    assert max(line) < 1.5 * min(line)


@pytest.mark.parametrize("kind", ["cough", "noise"])
def test_the_service_vad_takes_a_noise_that_lasts_for_speech(kind: signals.NoiseKind) -> None:
    def decisions(ms: int) -> list[SpeechStarted | SpeechStopped]:
        n = ms * signals.BYTES_PER_MS
        vad = EnergyVad(VadConfig(prefix_padding_ms=0, silence_duration_ms=200))
        return vad.feed(mulaw.silence(800) + signals.noise_audio(kind, 0, n, n) + SILENT * 20)

    assert decisions(300) == [SpeechStarted(100), SpeechStopped(100 + 300 + 200)]
    assert decisions(120) == []  # shorter than `speech_detect_ms`


def test_the_microphone_says_its_words_in_its_audio_and_tells_each_sound() -> None:
    script = CallerScript(
        segments=(Speech(100, text="hi"), Silence(20), Noise(60, "cough"), Speech(40))
    )
    mic = Microphone(script)
    ticks = [mic.tick(n * 0.02, {}) for n in range(12)]

    assert [t.sound for t in ticks] == [
        *["speech"] * 5, None, *["cough"] * 3, *["speech"] * 2, None
    ]  # fmt: skip
    assert [n for n, t in enumerate(ticks) if t.speech_onset] == [0, 6, 9]
    assert [n for n, t in enumerate(ticks) if t.sound_end] == [4, 8, 10]
    assert [t.text for t in ticks[:5]] == ["hi"] * 5
    frames = [t.frame or b"" for t in ticks]
    assert watermark.decode(b"".join(frames[:5])) == "hi"
    assert watermark.decode(b"".join(frames[6:9])) == ""
    # Speech without words is the audio it always was, and carries no packet.
    assert b"".join(frames[9:11]) == signals.speech_audio(0, 320, 320)
    assert watermark.decode(b"".join(frames[9:11])) is None
    assert ticks[11].frame is None


def test_a_cough_when_heard_is_a_cough_with_no_words() -> None:
    script = CallerScript(
        segments=(SpeakWhenHeard(tone=2, after_ms=100, speech_ms=300, sound="cough"),)
    )
    mic = Microphone(script)
    # A tick's frame is the 20 ms up to it: the cough's first begins 100 ms in.
    assert mic.tick(0.1, {2: 0.0}).sound is None
    ticks = [mic.tick(0.12 + n * 0.02, {2: 0.0}) for n in range(15)]

    assert {t.sound for t in ticks} == {"cough"}
    n = 300 * signals.BYTES_PER_MS
    cough = b"".join(t.frame or b"" for t in ticks)
    assert cough == watermark.embed(signals.noise_audio("cough", 0, n, n), "")
    assert watermark.decode(cough) == ""


def test_a_sound_is_as_long_as_scripted_ending_inside_its_last_frame() -> None:
    """450 ms is 22 frames and half of a 23rd, the rest of that frame quiet (not 460 ms)."""
    mic = Microphone(CallerScript(segments=(Speech(450, text="Mm-hmm."), Silence(40))))
    ticks = [mic.tick(0.02 * (n + 1), {}) for n in range(25)]
    sounding = [t for t in ticks if t.sound == "speech"]
    assert len(sounding) == 23
    assert [t.sound_ms for t in sounding] == [20.0] * 22 + [10.0]
    assert [t.sound_end for t in sounding] == [False] * 22 + [True]
    last = sounding[-1].frame
    assert last is not None
    assert last[80:] == SILENT[80:]
    n = 450 * signals.BYTES_PER_MS
    assert b"".join(t.frame or b"" for t in sounding)[:n] == watermark.embed(
        signals.speech_audio(0, n, n), "Mm-hmm."
    )
    assert watermark.decode(b"".join(t.frame or b"" for t in sounding)) == "Mm-hmm."


def test_words_must_fit_in_the_sound_itself_not_the_frame_it_ends_in() -> None:
    need_ms = -(-watermark.packet_samples("Uh-huh.") // signals.BYTES_PER_MS)  # 12 ms
    assert Speech(need_ms, text="Uh-huh.").text == "Uh-huh."
    with pytest.raises(ValueError, match="too short"):
        Speech(need_ms - 1, text="Uh-huh.")  # its frame has room, the sound has not


def test_words_must_fit_their_sound_and_noises_have_none() -> None:
    with pytest.raises(ValueError, match="too short"):
        Speech(20, text="a sentence far too long for twenty milliseconds of audio")
    with pytest.raises(ValueError, match="no words"):
        SpeakWhenHeard(tone=1, text="achoo", sound="cough")
    with pytest.raises(ValueError, match="negative"):
        Leak(delay_ms=-1)


def test_the_speakerphone_hears_what_played_exactly_its_delay_earlier() -> None:
    payload = position.stamp(signals.tone_audio(3, 0, 8000, 8000), 0)  # 1 s from t=10
    playback = Playback(Timeline())
    playback.enqueue(payload, 10.0)
    # Gain 1: the microphone's samples are the played ones, as they were.
    mic = Microphone(CallerScript(segments=(Silence(1200),), leak=Leak(delay_ms=37, gain=1.0)))
    frames = []
    for k in range(1, 61):
        frame_end = 10.0 + k / 50
        playback.advance(frame_end)
        frames.append(mic.tick(frame_end, {}, playback).frame or b"")
    picked_up = mulaw.decode(b"".join(frames))  # from t=10 on
    delay = 37 * signals.BYTES_PER_MS

    assert picked_up[:delay] == [0] * delay
    assert picked_up[delay : delay + 8000] == mulaw.decode(payload)
    assert picked_up[delay + 8000 :] == [0] * (len(picked_up) - delay - 8000)
    # Down to their LSBs: every frame reads where in the answer it was played.
    assert [position.read(f) for f in frames[2:51]] == [k * 160 - delay for k in range(2, 51)]


def test_leaked_audio_is_mixed_in_and_the_words_written_over_it() -> None:
    payload = position.stamp(signals.tone_audio(1, 0, 8000, 8000), 0)
    playback = Playback(Timeline())
    playback.enqueue(payload, 0.0)
    script = CallerScript(segments=(Silence(200), Speech(600, text="uh-huh")), leak=Leak())
    mic = Microphone(script)
    frames = []
    for k in range(1, 51):
        playback.advance(k / 50)
        frames.append(mic.tick(k / 50, {}, playback).frame or b"")

    words = b"".join(frames[10:40])
    n = 600 * signals.BYTES_PER_MS
    assert words != watermark.embed(signals.speech_audio(0, n, n), "uh-huh")  # the leak is in
    assert watermark.decode(words) == "uh-huh"
    # The leaked answer alone is taken for speech: from its second syllable (the first
    # dips under -30 dBFS before 160 ms are up, 200-220 ms into the answer), 40 ms late.
    leaked_only = Microphone(CallerScript(segments=(Silence(1000),), leak=Leak()))
    heard = b"".join(leaked_only.tick(k / 50, {}, playback).frame or b"" for k in range(1, 51))
    vad = EnergyVad(VadConfig(prefix_padding_ms=0))
    assert vad.feed(heard) == [SpeechStarted(40 + 220)]


async def test_a_speakerphone_caller_over_the_wire_the_service_hears_leak_and_words() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        sid = await app.stream_sid()
        await app.wait_event("media", 10)
        await ws.send(media(sid, 1, 1000))  # the answer, as the app would play it
        await app.notifier.wait_for(lambda: app.closed)

    script = CallerScript(
        segments=(
            Noise(100),  # a crackle on the line as the call connects: too short for a turn
            SpeakWhenHeard(tone=1, after_ms=500, speech_ms=600, text="uh-huh"),
            Silence(800),
        ),
        hangup="stop",
        leak=Leak(),
    )
    async with FakeApp(behaviour) as app:
        timeline = await make_caller(app, script).run()
    payloads = [base64.b64decode(m["media"]["payload"]) for m in app.events("media")]
    leak_onset_ms = 20 * next(k for k, p in enumerate(payloads) if k > 5 and p != SILENT)
    words_onset_ms = 20 * next(k for k, p in enumerate(payloads) if watermark.decode(p))

    # Relayed to the service as a bridge forwards it.
    scripted = RealtimeScript(caller_words=("(not what was said)",))
    async with RealtimeSimulator(lambda: scripted) as sim, sdk_connection(sim) as conn:
        session = transcribing_session(create_response=False, interrupt_response=True)
        await start_session(conn, session)
        await append_audio(conn, b"".join(payloads))
        started, _ = await recv_until(conn, "input_audio_buffer.speech_started")
        heard, _ = await recv_until(conn, "conversation.item.input_audio_transcription.completed")

    # The leaked answer began the turn, before the caller said a word...
    assert leak_onset_ms + 400 < words_onset_ms
    assert leak_onset_ms <= started["audio_start_ms"] + 300 < words_onset_ms
    # ...and the words were heard through it.
    assert heard["transcript"] == "uh-huh"
    crackle, sound = timeline.sounds
    assert (crackle.kind, crackle.text) == ("noise", "")
    assert (sound.kind, sound.text) == ("speech", "uh-huh")
    assert timeline.speech_started_at == [sound.started_at]  # speech only
    assert sound.ended_at is not None
    assert sound.ended_at - sound.started_at == pytest.approx(0.6, abs=0.01)
