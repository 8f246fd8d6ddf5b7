"""Builders for the JSON text frames Twilio Media Streams sends to the app.

Shaped as captured from the real service (`tests/data/real-traffic/`): every
number in the envelope a string, keys in its order (`start` and `media` put
`streamSid` last; `stop` has no reason and puts `streamSid` before its body).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass, field
from functools import lru_cache


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix and 32 hex digits."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class StreamIds:
    account_sid: str
    call_sid: str
    stream_sid: str


def connected() -> str:
    return json.dumps(
        {"event": "connected", "protocol": "Call", "version": "1.0.0"}, separators=(",", ":")
    )


def start(ids: StreamIds, sequence: int, custom_parameters: dict[str, str]) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": str(sequence),
            "start": {
                "accountSid": ids.account_sid,
                "streamSid": ids.stream_sid,
                "callSid": ids.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": custom_parameters,
            },
            "streamSid": ids.stream_sid,
        },
        separators=(",", ":"),
    )


def media(ids: StreamIds, sequence: int, chunk: int, timestamp_ms: int, payload: bytes) -> str:
    # Built by hand, as Twilio's own frames are compact JSON: 50 of these a second
    # per call make up most of what a load generator does.
    return (
        f'{{"event":"media","sequenceNumber":"{sequence}",'
        f'"media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{timestamp_ms}",'
        f'"payload":"{_b64(payload)}"}},"streamSid":"{ids.stream_sid}"}}'
    )


@lru_cache(maxsize=4096)
def _b64(payload: bytes) -> str:
    # Caller audio repeats (silence, periodic test speech).
    return base64.b64encode(payload).decode("ascii")


def mark(ids: StreamIds, sequence: int, name: str) -> str:
    return json.dumps(
        {
            "event": "mark",
            "sequenceNumber": str(sequence),
            "streamSid": ids.stream_sid,
            "mark": {"name": name},
        },
        separators=(",", ":"),
    )


def dtmf(ids: StreamIds, sequence: int, digit: str) -> str:
    """A key the caller pressed (bidirectional streams only); `streamSid` before the number."""
    return json.dumps(
        {
            "event": "dtmf",
            "streamSid": ids.stream_sid,
            "sequenceNumber": str(sequence),
            "dtmf": {"track": "inbound_track", "digit": digit},
        },
        separators=(",", ":"),
    )


def stop(ids: StreamIds, sequence: int) -> str:
    return json.dumps(
        {
            "event": "stop",
            "sequenceNumber": str(sequence),
            "streamSid": ids.stream_sid,
            "stop": {"accountSid": ids.account_sid, "callSid": ids.call_sid},
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class AppMessage:
    """A frame from the app that Twilio would not act on; `problems` says why."""

    problems: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class AppMedia(AppMessage):
    payload: bytes = b""


@dataclass(frozen=True)
class AppMark(AppMessage):
    name: str = ""


@dataclass(frozen=True)
class AppClear(AppMessage):
    pass


def parse_app_message(message: str | bytes, stream_sid: str) -> AppMessage:
    """Parse a frame the app sent; anything real Twilio would reject is listed in `problems`."""
    if isinstance(message, bytes):
        return AppMessage(("binary frame (Twilio error 31950)",))
    try:
        data = json.loads(message)
        event = data["event"]
    except (ValueError, KeyError, TypeError):
        return AppMessage((f"malformed message: {message[:80]!r}",))
    problems: tuple[str, ...] = ()
    if data.get("streamSid") != stream_sid:
        problems = (f"{event}: wrong streamSid {data.get('streamSid')!r}",)
    try:
        if event == "media":
            payload = binascii.a2b_base64(data["media"]["payload"], strict_mode=True)
            return AppMedia(problems, payload)
        if event == "mark":
            return AppMark(problems, str(data["mark"]["name"]))
    except (KeyError, TypeError, binascii.Error) as exc:
        return AppMessage((*problems, f"{event}: invalid body ({exc!r})"))
    if event == "clear":
        return AppClear(problems)
    return AppMessage((*problems, f"unknown event {event!r}"))
