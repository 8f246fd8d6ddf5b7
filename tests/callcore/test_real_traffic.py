"""Every message of the public captures (`tests/data/real-traffic/`) through the parsers.

The files are copies of the team's shared captures, each naming its `source`. Each
known event becomes its typed event with the fields the call acts on; an
unknown one is `Ignored`; nothing raises. The only refusals are the media
payloads their authors abbreviated in print (not base64 as printed: the
bridge skips such a message with a log line, as it would a corrupt one).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcore import CallCore, CoreConfig, Log
from callcore.protocol import realtime as rt
from callcore.protocol.twilio import (
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioProtocolError,
    parse_twilio_message,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "real-traffic"


def load(name: str) -> dict[str, Any]:
    capture: dict[str, Any] = json.loads((DATA / name).read_text())
    assert capture["source"], f"{name} names no source"
    return capture


def texts(capture: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, text) of every message, as it went over the wire where the file has that.

    A documentation example printed with trailing commas (not JSON) is taken as
    the file parses it; an event cut off in its source is left out.
    """
    for key in ("events", "examples", "messages", "reports"):
        for index, entry in enumerate(capture.get(key, [])):
            where = f"{key}[{index}]"
            if "type" in entry or ("event" in entry and "raw" not in entry):
                yield where, json.dumps(entry)  # the event itself (the WebRTC logs)
                continue
            if entry.get("truncated_in_source"):
                continue
            raw = entry.get("raw")
            if isinstance(raw, str):
                try:
                    json.loads(raw)
                except ValueError:
                    pass
                else:
                    yield where, raw
                    continue
            for field in ("json", "json_trailing_commas_removed", "reconstructed_event"):
                if isinstance(entry.get(field), dict):
                    yield where, json.dumps(entry[field])
                    break
            else:
                if isinstance(entry.get("json_of_error_object"), dict):
                    event = {
                        "type": "error",
                        "event_id": None,
                        "error": entry["json_of_error_object"],
                    }
                    yield where, json.dumps(event)


OPENAI = sorted(path.name for path in DATA.glob("openai-*.json"))
TWILIO = sorted(path.name for path in DATA.glob("twilio-*.json"))


def openai_events() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (f"{name} {where}", text, json.loads(text))
        for name in OPENAI
        for where, text in texts(load(name))
    ]


def test_every_capture_file_is_read() -> None:
    assert len(OPENAI) == 5
    assert len(TWILIO) == 3
    # 485 WebRTC (beta), 27 GA capture (one event cut off in its source), 21 GA docs
    # examples, the 4 error reports that print a whole event or error object.
    assert len(openai_events()) == 537


KNOWN = {
    "session.created": rt.SessionCreated,
    "response.created": rt.ResponseCreated,
    "response.output_audio.delta": rt.AudioDelta,
    "response.audio.delta": rt.AudioDelta,
    "response.output_audio.done": rt.AudioDone,
    "response.audio.done": rt.AudioDone,
    "response.output_audio_transcript.delta": rt.TranscriptDelta,
    "response.audio_transcript.delta": rt.TranscriptDelta,
    "response.output_audio_transcript.done": rt.TranscriptDone,
    "response.audio_transcript.done": rt.TranscriptDone,
    "response.done": rt.ResponseDone,
    "response.function_call_arguments.done": rt.FunctionCallDone,
    "input_audio_buffer.speech_started": rt.SpeechStarted,
    "input_audio_buffer.speech_stopped": rt.SpeechStopped,
    "conversation.item.input_audio_transcription.completed": rt.InputTranscribed,
    "conversation.item.truncated": rt.ItemTruncated,
    "conversation.item.deleted": rt.ItemDeleted,
    "error": rt.ServerError,
}


@pytest.mark.parametrize(("where", "text", "event"), openai_events(), ids=lambda v: "")
def test_every_realtime_event_becomes_its_typed_event(
    where: str, text: str, event: dict[str, Any]
) -> None:
    parsed = rt.parse_server_event(text)

    kind = event["type"]
    expected = KNOWN.get(kind, rt.Ignored)
    assert type(parsed) is expected, where
    match parsed:
        case rt.Ignored():
            assert parsed.type == kind[:60]
        case rt.AudioDelta() | rt.AudioDone() | rt.TranscriptDelta() | rt.TranscriptDone():
            assert (parsed.response_id, parsed.item_id) == (event["response_id"], event["item_id"])
            if isinstance(parsed, rt.TranscriptDelta):
                assert parsed.delta == event["delta"]  # `obfuscation` beside it changes nothing
        case rt.SpeechStarted():
            assert (parsed.audio_start_ms, parsed.item_id) == (
                event["audio_start_ms"],
                event["item_id"],
            )
        case rt.SpeechStopped():
            assert (parsed.audio_end_ms, parsed.item_id) == (
                event["audio_end_ms"],
                event["item_id"],
            )
        case rt.ResponseDone():
            response = event["response"]
            assert (parsed.response_id, parsed.status) == (response["id"], response["status"])
            messages = [i["id"] for i in response["output"] if i["type"] == "message"]
            assert list(parsed.message_item_ids) == messages
            details = response.get("status_details") or {}
            assert parsed.reason == (details.get("reason") or "")
        case rt.FunctionCallDone():
            assert (parsed.call_id, parsed.name, parsed.arguments) == (
                event["call_id"],
                event["name"],
                event["arguments"],
            )
        case rt.ItemTruncated():
            assert (parsed.item_id, parsed.audio_end_ms) == (
                event["item_id"],
                event["audio_end_ms"],
            )
        case rt.ServerError():
            error = event["error"]
            assert parsed.code == (error.get("code") or error.get("type") or "unknown")
            assert parsed.message == error["message"][:300]
            # The service leaves `param` and the client's `event_id` null (real reports).
            assert parsed.client_event_id == (error.get("event_id") or "")


def test_the_beta_and_ga_names_of_one_event_parse_alike() -> None:
    seen: dict[type, set[str]] = {}
    for _, text, event in openai_events():
        seen.setdefault(type(rt.parse_server_event(text)), set()).add(event["type"])
    assert {"response.audio_transcript.delta", "response.output_audio_transcript.delta"} <= (
        seen[rt.TranscriptDelta]
    )
    assert {"response.audio.done", "response.output_audio.done"} <= seen[rt.AudioDone]


def test_the_core_takes_every_real_event_and_logs_the_ones_it_ignores() -> None:
    """Replayed into a call's core in their files' order: nothing raises, and each event
    the call does not act on is a debug line naming its type (no payload)."""
    for name in OPENAI:
        core = CallCore(CoreConfig(stream_sid="MZ" + "1" * 32), 0.0)
        core.model_opened(0.0)
        ignored: list[str] = []
        for step, (_, text) in enumerate(texts(load(name))):
            event = rt.parse_server_event(text)
            core.model_event(event, step * 0.01)
            while (out := core.pop_output()) is not None:
                if isinstance(out, Log) and out.level == logging.DEBUG:
                    ignored.append(out.message % out.args)
            if isinstance(event, rt.Ignored):
                assert ignored[-1] == f"Realtime event ignored: {event.type}", name


def twilio_messages() -> list[tuple[str, str, dict[str, Any], str]]:
    """What Twilio sends (the docs' server->twilio examples are `StreamMessages`'s to build)."""
    out = []
    for name in TWILIO:
        capture = load(name)
        notes = " ".join(capture.get("notes", []))
        entries = capture.get("messages") or capture.get("examples") or []
        for (where, text), entry in zip(texts(capture), entries, strict=True):
            if entry.get("direction", "twilio->server") == "twilio->server":
                out.append((f"{name} {where}", text, json.loads(text), notes))
    return out


def test_every_twilio_message_is_read() -> None:
    assert len(twilio_messages()) >= 15


@pytest.mark.parametrize(("where", "text", "message", "notes"), twilio_messages(), ids=lambda v: "")
def test_every_twilio_message_becomes_its_typed_message(
    where: str, text: str, message: dict[str, Any], notes: str
) -> None:
    event = message["event"]
    if event == "media":
        payload = message["media"]["payload"]
        try:
            audio = base64.b64decode(payload, validate=True)
        except ValueError:
            # Abbreviated in print by its author ("payload abbreviated", " ... "): the
            # bridge refuses it as it would a corrupt frame, with a reason to log.
            assert "abbreviated" in notes or "..." in payload, where
            with pytest.raises(TwilioProtocolError, match="not base64"):
                parse_twilio_message(text)
            return
        parsed = parse_twilio_message(text)
        assert isinstance(parsed, Media), where
        assert parsed.audio == audio
        assert parsed.timestamp_ms == int(message["media"]["timestamp"])  # a string on the wire
        assert parsed.track == message["media"]["track"]
        return
    parsed = parse_twilio_message(text)
    match event:
        case "connected":
            assert isinstance(parsed, Connected)
            assert parsed.protocol == "Call"
        case "start":
            assert isinstance(parsed, Start)
            start = message["start"]
            assert (parsed.call_sid, parsed.stream_sid) == (start["callSid"], start["streamSid"])
            assert parsed.media_format_ok
            assert parsed.custom_parameters == start["customParameters"]
        case "mark":
            assert isinstance(parsed, Mark)
            assert parsed.name == message["mark"]["name"]
        case "dtmf":
            assert isinstance(parsed, Dtmf)
            assert parsed.digit == message["dtmf"]["digit"]
        case "stop":
            assert isinstance(parsed, Stop)
            assert parsed.call_sid == message["stop"]["callSid"]
        case _:
            raise AssertionError(f"{where}: an event the captures were not known to hold")
