"""The Twilio stand-in's key presses (`dtmf`) and its following of a `<Dial>` answer."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from twilio.twiml.voice_response import VoiceResponse
from websockets.asyncio.server import ServerConnection

from simulators import mulaw, signals
from simulators.twilio import (
    CallerScript,
    Dtmf,
    Silence,
    TwimlError,
    parse_followup,
)
from simulators.twilio.microphone import Microphone
from tests.simulators.fake_app import FakeApp, media
from tests.simulators.fake_app import mark as app_mark
from tests.simulators.test_twilio_caller import make_caller

DOCS = Path(__file__).resolve().parents[1] / "data" / "real-traffic" / "twilio-docs-examples.json"
SILENT = mulaw.silence(signals.FRAME_BYTES)
ACTION_PATH = "/twilio/stream-ended/"
TWIML_WITH_ACTION = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    f'<Connect action="https://calls.example.test{ACTION_PATH}">'
    '<Stream url="wss://calls.example.test/twilio/media-stream/">'
    '<Parameter name="token" value="tok-123"/></Stream></Connect></Response>'
)


def library_dial(noun: str) -> str:
    """The TwiML of a `<Dial>` as the twilio library writes it (what the bridge sends)."""
    response = VoiceResponse()
    if not noun:
        response.dial("+15550001111")
    elif noun == "number":
        response.dial().number("+15550001111")
    else:
        response.dial().sip("sip:desk@example.com")
    return str(response)


def documented_dtmf() -> dict[str, object]:
    examples = json.loads(DOCS.read_text())["examples"]
    found: dict[str, object] = next(e["json"] for e in examples if e["event"] == "dtmf")
    return found


def test_the_microphone_presses_a_key_every_gap_with_silence_flowing() -> None:
    mic = Microphone(CallerScript(segments=(Dtmf("12", gap_ms=60), Silence(40))))
    ticks = [mic.tick(float(n), {}) for n in range(9)]

    assert [t.digits for t in ticks] == ["1", "", "", "2", "", "", "", "", ""]
    assert [t.frame for t in ticks[:8]] == [SILENT] * 8  # 2 x 60 ms, then 40 ms of silence
    assert ticks[8].frame is None


def test_dtmf_digits_are_those_of_a_keypad() -> None:
    assert Dtmf("0123456789*#").digits == "0123456789*#"
    for digits in ("12a", "", "1 2"):
        with pytest.raises(ValueError, match="digits"):
            Dtmf(digits)
    with pytest.raises(ValueError, match="gap_ms"):
        Dtmf("1", gap_ms=-20)


async def test_key_presses_are_twilio_s_dtmf_messages_paced_between_the_media() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        await app.notifier.wait_for(lambda: app.closed)

    script = CallerScript(
        segments=(Silence(100), Dtmf("1*#", gap_ms=200), Silence(100)), hangup="stop"
    )
    async with FakeApp(behaviour) as app:
        caller = make_caller(app, script)
        timeline = await caller.run()
        await app.notifier.wait_for(lambda: app.closed)

    sid = app.events("start")[0]["streamSid"]
    presses = app.events("dtmf")
    assert [p["dtmf"] for p in presses] == [
        {"track": "inbound_track", "digit": digit} for digit in "1*#"
    ]
    documented = documented_dtmf()
    for press in presses:
        assert list(press) == list(documented)  # Twilio's key order: streamSid first
        assert press["streamSid"] == sid
        assert isinstance(press["sequenceNumber"], str)
    # One counter for every message after `connected`: no gap, no repeat.
    numbered = [m for _, m in app.inbox if isinstance(m, dict) and "sequenceNumber" in m]
    assert [int(m["sequenceNumber"]) for m in numbered] == list(range(1, len(numbered) + 1))
    # Audio goes on around the keys: 10 frames between two presses, 40 in all.
    kinds = [m["event"] for m in numbered if m["event"] in ("media", "dtmf")]
    at = [index for index, kind in enumerate(kinds) if kind == "dtmf"]
    assert [b - a for a, b in itertools.pairwise(at)] == [11, 11]
    assert at[0] == 5
    assert kinds.count("media") == (100 + 3 * 200 + 100) // 20
    chunks = [int(m["media"]["chunk"]) for m in numbered if m["event"] == "media"]
    assert chunks == list(range(1, len(chunks) + 1))
    # The timeline has each press, due `gap_ms` apart on the stream's schedule (when it
    # was sent moves with a late timer: under load, one late send and the next on time
    # were 246 and 154 ms apart), and sent no earlier than due.
    assert [p.digit for p in timeline.dtmf] == ["1", "*", "#"]
    due = [p.due for p in timeline.dtmf]
    gaps = [b - a for a, b in itertools.pairwise(due)]
    assert all(0.19 <= gap <= 0.3 for gap in gaps), gaps
    assert all(p.at >= at - 1e-6 for p, at in zip(timeline.dtmf, due, strict=True))
    assert timeline.stream_started_at is not None
    assert 0.11 <= due[0] - timeline.stream_started_at <= 0.25  # the 6th frame


@pytest.mark.parametrize(
    ("twiml", "target"),
    [
        ("<Response><Dial>+15551234567</Dial></Response>", "+15551234567"),
        ("<Response><Dial> <Number>+15557654321</Number> </Dial></Response>", "+15557654321"),
        (
            '<Response><Say>Transferring you.</Say><Dial timeout="20">'
            "<Sip>sip:agent@pbx.example.com</Sip></Dial></Response>",
            "sip:agent@pbx.example.com",
        ),
        (library_dial(""), "+15550001111"),
        (library_dial("number"), "+15550001111"),
        (library_dial("sip"), "sip:desk@example.com"),
    ],
)
def test_parse_followup_reads_the_dial_forms(twiml: str, target: str) -> None:
    followup = parse_followup(twiml)
    assert followup.dial == target
    assert followup.stream is None
    assert not followup.hangup


def test_parse_followup_without_a_dial_and_unsimulated_dials() -> None:
    said = parse_followup("<Response><Say>Sorry.</Say><Hangup/></Response>")
    assert (said.said, said.hangup, said.dial) == (("Sorry.",), True, None)
    assert parse_followup("<Response><Say>Hi.</Say><Dial>+1555</Dial></Response>").said == ("Hi.",)
    for twiml in (
        "<Response><Dial><Conference>room</Conference></Dial></Response>",
        "<Response><Dial> </Dial></Response>",
    ):
        with pytest.raises(TwimlError):
            parse_followup(twiml)


async def test_a_dial_answer_transfers_the_caller_right_after_the_final_mark() -> None:
    async def behaviour(app: FakeApp, ws: ServerConnection) -> None:
        sid = await app.stream_sid()
        await ws.send(media(sid, 1, 200))
        await ws.send(app_mark(sid, "final"))
        await app.wait_event("mark")
        await ws.close()  # the bridge hands the call to <Dial>

    dial = (
        "<Response><Say>Transferring you.</Say>"
        "<Dial><Number>+15551234567</Number></Dial></Response>"
    )
    async with FakeApp(behaviour, twiml=TWIML_WITH_ACTION, answers={ACTION_PATH: dial}) as app:
        caller = make_caller(app)
        timeline = await caller.run(status_callback=True)

    assert timeline.closed_by == "server"
    assert timeline.dialed == "+15551234567"
    assert timeline.said == ["Transferring you."]
    assert timeline.dialed_at is not None
    assert timeline.last_echo_at is not None
    final = timeline.mark("final")
    assert final is not None
    assert timeline.last_echo_at == final.echoed_at
    assert 0 <= timeline.dialed_at - timeline.last_echo_at <= 0.3
    action = next(hit for hit in app.http if hit.path == ACTION_PATH)
    assert action.signature_valid
    assert action.params["CallStatus"] == "in-progress"
    # The caller left the stream for the dialed party: no new stream, nothing more sent.
    assert app.streams == 1
    assert timeline.handovers == []
    assert [hit.path for hit in app.http] == ["/twilio/voice/", ACTION_PATH, "/twilio/status/"]
