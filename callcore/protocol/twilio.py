"""Twilio Media Streams messages: parsed into frozen dataclasses, built as JSON text."""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from playout import BYTES_PER_MS, AudioFrame, Outbound

# Bounds on what one message may carry. Twilio sends 20 ms of audio a frame
# (160 bytes) and a `start` of a few hundred bytes plus its custom parameters.
MAX_MESSAGE_CHARS = 64 * 1024
MAX_MEDIA_BYTES = 8000  # one second of 8 kHz mu-law

# What the bridge and the model session are configured for.
MULAW = "audio/x-mulaw"
# The caller's own audio (a `<Start><Stream>` fork may also carry `outbound`).
INBOUND = "inbound"
SAMPLE_RATE = 8000
CHANNELS = 1


class TwilioProtocolError(ValueError):
    """A message that is not valid Media Streams JSON; `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = MULAW
    sample_rate: int = SAMPLE_RATE
    channels: int = CHANNELS

    @property
    def media_format_ok(self) -> bool:
        """8 kHz mono mu-law: the only format this bridge passes on unchanged."""
        return (self.encoding, self.sample_rate, self.channels) == (MULAW, SAMPLE_RATE, CHANNELS)

    @property
    def media_format(self) -> str:
        return f"{self.encoding} {self.sample_rate} Hz {self.channels} channel(s)"


@dataclass(frozen=True, slots=True)
class Media:
    """Caller audio: `payload_b64` as received (it can go to the model unchanged), and decoded."""

    payload_b64: str
    audio: bytes
    timestamp_ms: int
    track: str


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Stop:
    call_sid: str


@dataclass(frozen=True, slots=True)
class Unknown:
    event: str


_SID = re.compile(r"[A-Za-z0-9]{2,64}")

TwilioMessage = Connected | Start | Media | Mark | Dtmf | Stop | Unknown


def _obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TwilioProtocolError(f"{name} is not an object")
    return value


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TwilioProtocolError(f"{name} is not a string")
    return value


def _parse_media(msg: dict[str, Any]) -> Media:
    media = _obj(msg.get("media"), "media")
    payload = _str(media.get("payload"), "media.payload")
    if len(payload) > (MAX_MEDIA_BYTES * 4) // 3 + 4:
        raise TwilioProtocolError(f"media.payload too large ({len(payload)} base64 characters)")
    try:
        # The C decoder, strict: the payload goes to the model exactly as received.
        audio = binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        raise TwilioProtocolError("media.payload is not base64") from None
    timestamp = media.get("timestamp", "0")
    try:
        timestamp_ms = int(timestamp)
    except (TypeError, ValueError, OverflowError):
        raise TwilioProtocolError("media.timestamp is not a number") from None
    return Media(payload, audio, timestamp_ms, str(media.get("track", INBOUND)))


def _parse_start(msg: dict[str, Any]) -> Start:
    start = _obj(msg.get("start"), "start")
    params = start.get("customParameters", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise TwilioProtocolError("start.customParameters is not an object")
    media_format = _obj(start.get("mediaFormat") or {}, "start.mediaFormat")
    try:
        sample_rate = int(media_format.get("sampleRate", SAMPLE_RATE))
        channels = int(media_format.get("channels", CHANNELS))
    except (TypeError, ValueError, OverflowError):
        raise TwilioProtocolError("start.mediaFormat has a field that is not a number") from None
    stream_sid = _str(start.get("streamSid", msg.get("streamSid")), "start.streamSid")
    call_sid = _str(start.get("callSid"), "start.callSid")
    if not (_SID.fullmatch(stream_sid) and _SID.fullmatch(call_sid)):
        raise TwilioProtocolError("start has a malformed SID")
    return Start(
        stream_sid=stream_sid,
        call_sid=call_sid,
        account_sid=str(start.get("accountSid", "")),
        custom_parameters={str(k): str(v) for k, v in params.items()},
        encoding=str(media_format.get("encoding", MULAW))[:40],
        sample_rate=sample_rate,
        channels=channels,
    )


def parse_twilio_message(text: str) -> TwilioMessage:
    """Parse one text frame from Twilio; raises TwilioProtocolError if malformed."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise TwilioProtocolError(f"message too large ({len(text)} characters)")
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise TwilioProtocolError("not JSON") from None
    msg = _obj(msg, "message")
    event = msg.get("event")
    if event == "media":
        return _parse_media(msg)
    if event == "mark":
        return Mark(_str(_obj(msg.get("mark"), "mark").get("name"), "mark.name"))
    if event == "start":
        return _parse_start(msg)
    if event == "connected":
        return Connected(str(msg.get("protocol", "")))
    if event == "dtmf":
        return Dtmf(str(_obj(msg.get("dtmf"), "dtmf").get("digit", ""))[:8])
    if event == "stop":
        return Stop(str(_obj(msg.get("stop") or {}, "stop").get("callSid", "")))
    if not isinstance(event, str):
        raise TwilioProtocolError("event is missing")
    return Unknown(event[:40])


# --- what the bridge sends ------------------------------------------------------------------


class StreamMessages:
    """The messages the bridge sends on one stream, built by hand: 60 of them a second a call.

    Stream SIDs are checked against `_SID` (letters and digits) when `start`
    is parsed, and the tracker's mark names are its own (`po-g<N>-<N>`):
    nothing needs escaping (a mark name that would is sent through `json`).
    """

    def __init__(self, stream_sid: str, media_message_ms: int = 100) -> None:
        self.stream_sid = stream_sid
        self._message_bytes = max(media_message_ms, 1) * BYTES_PER_MS
        self._media_prefix = f'{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"'

    def media(self, audio: bytes) -> str:
        payload = binascii.b2a_base64(audio, newline=False).decode("ascii")
        return f'{self._media_prefix}{payload}"}}}}'

    def mark(self, name: str) -> str:
        if not _MARK_NAME.fullmatch(name):
            return json.dumps(
                {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
            )
        return f'{{"event":"mark","streamSid":"{self.stream_sid}","mark":{{"name":"{name}"}}}}'

    def clear(self) -> str:
        return f'{{"event":"clear","streamSid":"{self.stream_sid}"}}'

    def playout(self, out: Sequence[Outbound]) -> list[tuple[str, int]]:
        """The tracker's frames and marks as messages, each with its generation.

        Frames sent together (one refill) go as one `media` message of up to
        `media_message_ms`, as long as they follow each other in one item and
        no mark comes between (the tracker keeps marks at the ends of sends):
        the same audio, in the same order, in a third of the messages at the
        defaults (three frames a refill). Twilio plays a message's payload as it plays frames.
        """
        messages: list[tuple[str, int]] = []
        batch: list[bytes] = []
        batch_bytes = 0
        last: AudioFrame | None = None
        for item in out:
            if isinstance(item, AudioFrame):
                joins = (
                    last is not None
                    and item.item_id == last.item_id
                    and item.generation == last.generation
                    and batch_bytes + len(item.payload) <= self._message_bytes
                )
                if not joins and last is not None:
                    messages.append((self.media(_joined(batch)), last.generation))
                    batch, batch_bytes = [], 0
                batch.append(item.payload)
                batch_bytes += len(item.payload)
                last = item
            else:
                if last is not None:
                    messages.append((self.media(_joined(batch)), last.generation))
                    batch, batch_bytes, last = [], 0, None
                messages.append((self.mark(item.name), item.generation))
        if last is not None:
            messages.append((self.media(_joined(batch)), last.generation))
        return messages


_MARK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _joined(payloads: list[bytes]) -> bytes:
    return payloads[0] if len(payloads) == 1 else b"".join(payloads)
