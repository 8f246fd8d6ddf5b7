"""The Twilio caller against a tiny signature-checking app: webhook, stream, playback."""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import time

import pytest
from websockets.asyncio.server import ServerConnection

from simulators import signals
from simulators.twilio import CallerScript, SendText, Silence, SpeakWhenHeard, TwilioCaller
from tests.simulators.fake_app import (
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    FakeApp,
    clear,
    mark,
    media,
)


def make_caller(app: FakeApp, script: CallerScript | None = None, **kw: object) -> TwilioCaller:
    return TwilioCaller(
        public_base_url=PUBLIC_BASE_URL,
        local_base_url=app.http_base_url,
        local_stream_base_url=app.ws_base_url,
        auth_token=AUTH_TOKEN,
        script=script,
        **kw,  # type: ignore[arg-type]
    )


async def test_webhook_handshake_start_and_media_cadence() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        await app.wait_event("media", 10)
        await ws.close()

    async with FakeApp(behaviour) as app:
        caller = make_caller(app)
        timeline = await caller.run()
        assert timeline.closed_by == "server"
        voice = app.http[0]
        assert voice.path == "/twilio/voice/"
        assert voice.signature_valid
        assert re.fullmatch(r"CA[0-9a-f]{32}", voice.params["CallSid"])
        assert voice.params["AccountSid"].startswith("AC")
        assert voice.params["CallStatus"] == "ringing"
        assert voice.params["Direction"] == "inbound"
        assert app.ws_signature_valid
        assert caller.stream is not None
        assert caller.stream.parameters == {"token": "tok-123", "lang": "en"}
        kinds = [m["event"] for _, m in app.inbox]
        assert kinds[:2] == ["connected", "start"]
        start = app.inbox[1][1]
        assert start["sequenceNumber"] == "1"
        assert re.fullmatch(r"MZ[0-9a-f]{32}", start["streamSid"])
        assert start["start"]["callSid"] == voice.params["CallSid"]
        assert start["start"]["customParameters"] == {"token": "tok-123", "lang": "en"}
        assert start["start"]["tracks"] == ["inbound"]
        assert start["start"]["mediaFormat"] == {
            "encoding": "audio/x-mulaw",
            "sampleRate": 8000,
            "channels": 1,
        }
        frames = [(t, m) for t, m in app.inbox if m["event"] == "media"][:10]
        for n, (_, m) in enumerate(frames, start=1):
            assert m["sequenceNumber"] == str(n + 1)
            assert m["media"]["chunk"] == str(n)
            assert m["media"]["track"] == "inbound"
            assert base64.b64decode(m["media"]["payload"]) == b"\xff" * 160
        # Twilio's clock: a string, starting 100-155 ms in, about 20 ms a frame (as seen live).
        stamps = [int(m["media"]["timestamp"]) for _, m in frames]
        assert 100 <= stamps[0] <= 155
        assert all(18 <= b - a <= 22 for a, b in itertools.pairwise(stamps))
        span = frames[-1][0] - frames[0][0]
        assert 0.17 <= span <= 0.3  # 9 intervals of 20 ms, real time


async def test_mark_is_echoed_only_after_its_audio_played() -> None:
    sent_at: list[float] = []

    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        sid = await app.stream_sid()
        sent_at.append(time.monotonic())
        for part in range(3):
            await ws.send(media(sid, 1, 100, total_ms=300, start_ms=part * 100))
        await ws.send(mark(sid, "m1"))
        await app.wait_event("mark")
        await ws.close()

    async with FakeApp(behaviour) as app:
        caller = make_caller(app)
        timeline = await caller.run()
        echoed = app.events("mark")[0]
        assert echoed["mark"] == {"name": "m1"}
        assert echoed["streamSid"] == app.events("start")[0]["streamSid"]
        assert int(echoed["sequenceNumber"]) > 2
        echo_received_at = next(t for t, m in app.inbox if m["event"] == "mark")
        assert echo_received_at - sent_at[0] >= 0.3
        record = timeline.mark("m1")
        assert record is not None
        assert record.echoed_at is not None
        assert not record.cleared
        assert record.echoed_at - timeline.tone_started_at[1] >= 0.3 - 1e-6
        assert record.position_ms == 300
        assert abs(timeline.heard_ms_by_tone()[1] - 300) < 1e-6
        assert timeline.underruns == []


async def test_clear_returns_pending_marks_at_once_and_drops_audio() -> None:
    cleared_at: list[float] = []

    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        sid = await app.stream_sid()
        await ws.send(media(sid, 1, 1000))
        await ws.send(mark(sid, "a"))
        await ws.send(media(sid, 2, 500))
        await ws.send(mark(sid, "b"))
        await caller.wait_heard(1, 100)
        cleared_at.append(time.monotonic())
        await ws.send(clear(sid))
        await app.wait_event("mark", 2)
        await ws.send(mark(sid, "c"))
        await app.wait_event("mark", 3)
        await ws.close()

    async with FakeApp(behaviour) as app:
        caller = make_caller(app)
        timeline = await caller.run()
        names = [m["mark"]["name"] for m in app.events("mark")]
        assert names == ["a", "b", "c"]
        returned_at = [t for t, m in app.inbox if m["event"] == "mark"]
        assert returned_at[1] - cleared_at[0] < 0.5  # at once, not after 1.4 s of audio
        assert returned_at[2] - returned_at[1] < 0.5  # buffer empty: "c" is immediate
        record_a, record_b = timeline.mark("a"), timeline.mark("b")
        assert record_a is not None
        assert record_a.cleared
        assert record_b is not None
        assert record_b.cleared
        clear_record = timeline.clears[0]
        assert clear_record.marks_returned == ("a", "b")
        assert 1500 - 300 < clear_record.dropped_ms < 1500 - 100
        heard = timeline.heard_ms_by_tone()
        assert 100 <= heard[1] < 300
        assert 2 not in heard


async def test_underrun_between_frames_of_the_same_tone() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        sid = await app.stream_sid()
        await ws.send(media(sid, 1, 100, total_ms=200))
        await ws.send(mark(sid, "first-half"))
        await app.wait_event("mark")
        await asyncio.sleep(0.05)  # the app stalls: a producer gap, not a wait for state
        await ws.send(media(sid, 1, 100, total_ms=200, start_ms=100))
        await ws.send(mark(sid, "second-half"))
        await app.wait_event("mark", 2)
        await asyncio.sleep(0.05)  # a gap before a different response is no underrun
        await ws.send(media(sid, 2, 100))
        await ws.send(mark(sid, "other"))
        await app.wait_event("mark", 3)
        await ws.close()

    async with FakeApp(behaviour) as app:
        timeline = await make_caller(app).run()
        assert len(timeline.underruns) == 1
        underrun = timeline.underruns[0]
        assert underrun.tone == 1
        assert underrun.gap_ms >= 45


async def test_drop_without_stop() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        await app.notifier.wait_for(lambda: app.closed)

    async with FakeApp(behaviour) as app:
        script = CallerScript(segments=(Silence(100),), hangup="drop")
        timeline = await make_caller(app, script).run()
        assert timeline.closed_by == "caller"
        assert timeline.dropped
        await app.notifier.wait_for(lambda: app.closed)
        assert app.events("stop") == []
        assert app.close_error is not None
        assert app.close_error.rcvd is None
        assert len(app.events("media")) == 5


async def test_stop_malformed_text_and_status_callback() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        await app.notifier.wait_for(lambda: app.closed)

    async with FakeApp(behaviour) as app:
        script = CallerScript(segments=(Silence(40), SendText("{oops"), Silence(20)), hangup="stop")
        caller = make_caller(app, script)
        timeline = await caller.run(status_callback=True)
        await app.notifier.wait_for(lambda: app.closed)
        assert timeline.sent_stop
        assert timeline.closed_by == "caller"
        messages = [m for _, m in app.inbox]
        assert messages[-1]["event"] == "stop"
        assert messages[-1]["stop"]["callSid"] == caller.call_sid
        assert "{oops" in messages
        assert app.close_error is None  # a clean close after the stop
        status = app.http[-1]
        assert status.path == "/twilio/status/"
        assert status.signature_valid
        assert status.params["CallStatus"] == "completed"


async def test_speak_when_heard_starts_relative_to_playback() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        sid = await app.stream_sid()
        await app.wait_event("media", 3)  # the response starts a little into the call
        await ws.send(media(sid, 1, 600))
        await app.notifier.wait_for(lambda: app.closed)

    script = CallerScript(
        segments=(SpeakWhenHeard(tone=1, after_ms=200, speech_ms=200), Silence(40)), hangup="stop"
    )
    async with FakeApp(behaviour) as app:
        timeline = await make_caller(app, script).run()
        onset = timeline.speech_started_at[0] - timeline.tone_started_at[1]
        # The first frame that begins at or after 200 ms (it is sent 20 ms later, full):
        # on the stream's schedule, which a late timer does not move.
        assert 0.2 - 1e-6 <= onset < 0.2 + 0.02
        payloads = [base64.b64decode(m["media"]["payload"]) for m in app.events("media")]
        voiced = [p for p in payloads if p != b"\xff" * 160]
        assert len(voiced) == 10
        # The sound began (and ended) where its samples were taken in: its first frame
        # came to the app no sooner than a frame after the sound began.
        voiced_at = [
            at
            for at, m in app.inbox
            if m.get("event") == "media" and base64.b64decode(m["media"]["payload"]) in voiced
        ]
        [sound] = timeline.sounds
        assert voiced_at[0] >= sound.started_at + 0.02
        assert sound.ended_at == pytest.approx(sound.started_at + 0.2, abs=1e-6)
        assert {signals.detect_tone(p) for p in voiced} == {signals.UNKNOWN}


async def test_latency_delays_mark_echo_round_trip() -> None:
    sent_at: list[float] = []

    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        sid = await app.stream_sid()
        sent_at.append(time.monotonic())
        await ws.send(media(sid, 1, 100))
        await ws.send(mark(sid, "m"))
        await app.wait_event("mark")
        await ws.close()

    async with FakeApp(behaviour) as app:
        await make_caller(app, latency_ms=40).run()
        echo_at = next(t for t, m in app.inbox if m["event"] == "mark")
        assert echo_at - sent_at[0] >= 0.1 + 0.08


async def test_echoes_withheld_from_a_tone_on_lose_every_later_mark_not_the_audio() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        sid = await app.stream_sid()
        await ws.send(media(sid, 1, 100))
        await ws.send(mark(sid, "greeting-end"))  # due the instant tone 2 starts
        await ws.send(media(sid, 2, 200, total_ms=1200))
        await ws.send(mark(sid, "goodbye-part"))
        await ws.send(media(sid, 2, 1000, total_ms=1200, start_ms=200))
        await ws.send(mark(sid, "goodbye-end"))
        await caller.wait_heard(2, 400)
        await ws.send(clear(sid))  # returns "goodbye-end" at once: lost as well
        await caller.wait_for(lambda: caller.timeline.clears)
        await ws.close()

    async with FakeApp(behaviour) as app:
        script = CallerScript(withhold_echoes_from_tone=2)
        caller = make_caller(app, script)
        timeline = await caller.run()
        assert [m["mark"]["name"] for m in app.events("mark")] == ["greeting-end"]
        part, end = timeline.mark("goodbye-part"), timeline.mark("goodbye-end")
        assert part is not None
        assert end is not None
        assert part.echoed_at is None
        assert part.due_at < timeline.clears[0].at  # reached by playback, never echoed
        assert end.cleared
        assert end.echoed_at is None
        assert timeline.clears[0].marks_returned == ("goodbye-end",)
        assert timeline.heard_ms_by_tone()[2] >= 400  # the audio itself still played


async def test_the_stream_opens_its_connect_time_after_the_twiml() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        await app.wait_event("start")
        await ws.close()

    async with FakeApp(behaviour) as app:
        caller = make_caller(app, stream_connect_ms=150)
        timeline = await caller.run()

    assert timeline.webhook_sent_at is not None
    assert timeline.webhook_answered_at is not None
    assert timeline.stream_started_at is not None
    # Twilio's handshakes with the app over the internet come between the two.
    assert timeline.stream_started_at - timeline.webhook_answered_at >= 0.15
