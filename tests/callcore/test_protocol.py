"""Wire formats: Twilio Media Streams parsing and building, Realtime client events."""

from __future__ import annotations

import base64
import json

import pytest

from callcore.protocol import realtime as rt
from callcore.protocol.twilio import (
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    StreamMessages,
    TwilioProtocolError,
    Unknown,
    parse_twilio_message,
)
from playout import AudioFrame, MarkOut

STREAM = "MZ" + "0" * 32
CALL = "CA" + "1" * 32


def test_parse_start_with_custom_parameters() -> None:
    text = json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": STREAM,
            "start": {
                "streamSid": STREAM,
                "accountSid": "AC" + "2" * 32,
                "callSid": CALL,
                "tracks": ["inbound"],
                "customParameters": {"token": "123.abc"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )
    assert parse_twilio_message(text) == Start(
        stream_sid=STREAM,
        call_sid=CALL,
        account_sid="AC" + "2" * 32,
        custom_parameters={"token": "123.abc"},
    )


def test_parse_media_keeps_payload_and_counts_bytes() -> None:
    payload = base64.b64encode(b"\xff" * 160).decode()
    text = json.dumps(
        {
            "event": "media",
            "sequenceNumber": "3",
            "streamSid": STREAM,
            "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": payload},
        }
    )
    assert parse_twilio_message(text) == Media(payload, b"\xff" * 160, 20, "inbound")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"event":"connected","protocol":"Call","version":"1.0.0"}', Connected("Call")),
        ('{"event":"mark","streamSid":"MZ1","mark":{"name":"g1-m3"}}', Mark("g1-m3")),
        ('{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"7"}}', Dtmf("7")),
        ('{"event":"stop","stop":{"accountSid":"AC1","callSid":"CA9"}}', Stop("CA9")),
        ('{"event":"stop"}', Stop("")),
        ('{"event":"surprise"}', Unknown("surprise")),
    ],
)
def test_parse_other_events(text: str, expected: object) -> None:
    assert parse_twilio_message(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "message is not an object"),
        ('{"sequenceNumber":"1"}', "event is missing"),
        ('{"event":"media","media":{"payload":"%%%"}}', "media.payload is not base64"),
        ('{"event":"media","media":{"payload":"/w==","timestamp":"x"}}', "not a number"),
        ('{"event":"media"}', "media is not an object"),
        ('{"event":"mark","mark":{}}', "mark.name is not a string"),
        ('{"event":"start","start":{"streamSid":"MZ1","callSid":"CA\\"x"}}', "malformed SID"),
        (
            '{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1",'
            '"mediaFormat":{"sampleRate":"x"}}}',
            "mediaFormat has a field that is not a number",
        ),
        (
            '{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1",'
            '"mediaFormat":{"sampleRate":null}}}',
            "mediaFormat has a field that is not a number",
        ),
        (
            '{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1","mediaFormat":"pcm"}}',
            "mediaFormat is not an object",
        ),
        (
            '{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1","customParameters":[]}}',
            "customParameters",
        ),
    ],
)
def test_malformed_messages_raise_with_a_loggable_reason(text: str, reason: str) -> None:
    with pytest.raises(TwilioProtocolError) as error:
        parse_twilio_message(text)
    assert reason in error.value.reason


def test_outbound_messages_are_twilio_json() -> None:
    messages = StreamMessages(STREAM)
    assert json.loads(messages.media(b"\x01\x02")) == {
        "event": "media",
        "streamSid": STREAM,
        "media": {"payload": base64.b64encode(b"\x01\x02").decode()},
    }
    assert json.loads(messages.mark("g2-m7")) == {
        "event": "mark",
        "streamSid": STREAM,
        "mark": {"name": "g2-m7"},
    }
    assert json.loads(messages.mark('a "quoted" name')) == {
        "event": "mark",
        "streamSid": STREAM,
        "mark": {"name": 'a "quoted" name'},
    }
    assert json.loads(messages.clear()) == {"event": "clear", "streamSid": STREAM}


def test_frames_sent_together_go_as_one_media_message_up_to_its_size() -> None:
    messages = StreamMessages(STREAM, media_message_ms=40)
    frame = [AudioFrame(bytes([n]) * 160, 1, "r1", "i1") for n in range(3)]
    other = AudioFrame(b"\x09" * 160, 1, "r1", "i2")
    sent = messages.playout([frame[0], frame[1], frame[2], MarkOut("m1", 1), other])

    payloads = [json.loads(text) for text, _ in sent]
    assert [p["event"] for p in payloads] == ["media", "media", "mark", "media"]
    assert base64.b64decode(payloads[0]["media"]["payload"]) == frame[0].payload + frame[1].payload
    assert base64.b64decode(payloads[1]["media"]["payload"]) == frame[2].payload
    assert base64.b64decode(payloads[3]["media"]["payload"]) == other.payload  # another item
    assert [generation for _, generation in sent] == [1, 1, 1, 1]


def test_session_update_is_mulaw_both_ways_with_vad_and_end_call() -> None:
    config = rt.SessionConfig(instructions="Be brief.", voice="marin", prefix_padding_ms=300)
    session = json.loads(rt.session_update(config))["session"]

    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"] == {"format": {"type": "audio/pcmu"}, "voice": "marin"}
    vad = session["audio"]["input"]["turn_detection"]
    assert vad["type"] == "server_vad"
    # The bridge owns the turn: the service neither answers nor cancels on its own.
    assert vad["create_response"] is vad["interrupt_response"] is False
    assert vad["prefix_padding_ms"] == 300
    assert [tool["name"] for tool in session["tools"]] == ["end_call"]
    assert session["instructions"] == "Be brief."


def test_client_events() -> None:
    assert json.loads(rt.input_audio_append("AAAA")) == {
        "type": "input_audio_buffer.append",
        "audio": "AAAA",
    }
    assert json.loads(rt.response_cancel()) == {"type": "response.cancel"}
    assert json.loads(rt.item_truncate("item_1", 1234)) == {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 1234,
    }
    assert json.loads(rt.item_delete("item_2")) == {
        "type": "conversation.item.delete",
        "item_id": "item_2",
    }
    assert json.loads(rt.response_create("Say hi")) == {
        "type": "response.create",
        "response": {"instructions": "Say hi"},
    }


def event(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, "event_id": "event_1", **fields})


def test_function_calls_and_end_call_ids_come_from_response_done_output() -> None:
    output = [
        {"type": "message", "id": "item_1"},
        {"type": "function_call", "name": "end_call", "call_id": "call_9", "arguments": "{}"},
        {"type": "function_call", "name": "other", "call_id": "call_8", "status": "completed"},
        # Cut off while its arguments were written: not a call to act on.
        {"type": "function_call", "name": "late", "call_id": "call_7", "status": "incomplete"},
    ]
    done = rt.parse_server_event(
        event("response.done", response={"id": "r1", "status": "completed", "output": output})
    )
    calls = (
        rt.FunctionCallDone("r1", "call_9", "end_call", "{}"),
        rt.FunctionCallDone("r1", "call_8", "other", ""),
    )
    assert done == rt.ResponseDone("r1", "completed", ("call_9",), ("item_1",), "", calls)
    assert rt.parse_server_event(event("response.done")) == rt.ResponseDone("", "", ())


@pytest.mark.parametrize("prefix", ["response.output_audio", "response.audio"])
def test_ga_and_beta_audio_events(prefix: str) -> None:
    audio = bytes(range(20))
    delta = event(
        f"{prefix}.delta", response_id="r1", item_id="i1", delta=base64.b64encode(audio).decode()
    )
    assert rt.parse_server_event(delta) == rt.AudioDelta("r1", "i1", audio)
    done = event(f"{prefix}.done", response_id="r1", item_id="i1")
    assert rt.parse_server_event(done) == rt.AudioDone("r1", "i1")


@pytest.mark.parametrize(
    "prefix", ["response.output_audio_transcript", "response.audio_transcript"]
)
def test_ga_and_beta_transcript_events(prefix: str) -> None:
    delta = event(f"{prefix}.delta", response_id="r1", item_id="i1", delta=" it is")
    assert rt.parse_server_event(delta) == rt.TranscriptDelta("r1", "i1", " it is")
    done = event(f"{prefix}.done", response_id="r1", item_id="i1", transcript="Yes it is")
    assert rt.parse_server_event(done) == rt.TranscriptDone("r1", "i1", "Yes it is")


def test_audio_delta_that_is_not_base64_is_kept_as_invalid() -> None:
    parsed = rt.parse_server_event(
        event("response.output_audio.delta", response_id="r1", item_id="i1", delta="%%%")
    )
    assert parsed == rt.AudioDelta("r1", "i1", b"", valid=False)


def test_speech_and_error_events() -> None:
    started = event("input_audio_buffer.speech_started", audio_start_ms=1200, item_id="u1")
    assert rt.parse_server_event(started) == rt.SpeechStarted(1200, "u1")
    error = event("error", error={"type": "invalid_request_error", "code": "bad", "message": "m"})
    assert rt.parse_server_event(error) == rt.ServerError("bad", "m", "", "")


@pytest.mark.parametrize(
    "raw",
    [
        event("error", error="a string"),
        event("response.done", response={"output": 3}),
        event("response.done", response=[]),
        event("input_audio_buffer.speech_started", audio_start_ms="12"),
        event("response.output_audio.delta", delta=None, response_id=5),
        event("session.created", session=None),
        event("conversation.item.truncated", audio_end_ms=True),
    ],
)
def test_oddly_shaped_events_read_their_odd_fields_as_absent(raw: str) -> None:
    rt.parse_server_event(raw)  # never raises for an event with a string type


@pytest.mark.parametrize("raw", ["", "not json", "[]", '{"type": ["x"]}', '{"no": "type"}', "1"])
def test_text_that_is_not_an_event_is_a_protocol_error(raw: str) -> None:
    with pytest.raises(rt.RealtimeProtocolError):
        rt.parse_server_event(raw)


def test_unknown_types_are_ignored() -> None:
    assert rt.parse_server_event(event("rate_limits.updated")) == rt.Ignored("rate_limits.updated")


def test_bounds_oversized_messages_and_frames_are_refused_before_they_are_decoded() -> None:
    from callcore.protocol.twilio import MAX_MEDIA_BYTES, MAX_MESSAGE_CHARS

    huge = '{"event":"dtmf","dtmf":{"digit":"' + "1" * MAX_MESSAGE_CHARS + '"}}'
    with pytest.raises(TwilioProtocolError, match="message too large"):
        parse_twilio_message(huge)
    payload = base64.b64encode(b"\xff" * (MAX_MEDIA_BYTES + 3)).decode()
    frame = '{"event":"media","media":{"payload":"' + payload + '"}}'
    with pytest.raises(TwilioProtocolError, match=r"media\.payload too large"):
        parse_twilio_message(frame)
    # One second is the most a frame may carry (Twilio sends 20 ms).
    payload = base64.b64encode(b"\xff" * MAX_MEDIA_BYTES).decode()
    parse_twilio_message('{"event":"media","media":{"payload":"' + payload + '"}}')


@pytest.mark.parametrize(
    ("media_format", "ok"),
    [
        ({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}, True),
        ({}, True),  # Twilio's defaults
        ({"encoding": "audio/x-mulaw", "sampleRate": 16000, "channels": 1}, False),
        ({"encoding": "audio/x-l16", "sampleRate": 8000, "channels": 1}, False),
        ({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 2}, False),
    ],
)
def test_the_media_format_is_checked_against_8_khz_mono_mulaw(
    media_format: dict[str, object], ok: bool
) -> None:

    text = json.dumps(
        {
            "event": "start",
            "start": {"streamSid": "MZ1", "callSid": "CA1", "mediaFormat": media_format},
        }
    )
    start = parse_twilio_message(text)
    assert isinstance(start, Start)
    assert start.media_format_ok is ok
