"""OpenAI Realtime: server events parsed into frozen dataclasses, client events built as JSON text.

Server events are read raw (`recv_bytes` + `json.loads`) and parsed here, GA
names and the older beta names alike, into the few shapes a call acts on;
any other type becomes `Ignored`. The SDK does not validate events, and a
provider may send odd shapes: a field of the wrong type is read as absent
(never an exception), and only text that is not a JSON object with a string
`type` is a `RealtimeProtocolError`.

Client events are built as text for `send_raw`: the SDK's typed helpers run a
type-driven transform on every call, the largest CPU cost of a bridge at 50
appends a second.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

END_CALL_TOOL = "end_call"
# The platform's transfer to a person (`CoreConfig.transfer_targets`).
TRANSFER_TOOL = "transfer_call"


class RealtimeProtocolError(ValueError):
    """A server message that is not an event at all; `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- server events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session_id: str


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str


@dataclass(frozen=True, slots=True)
class AudioDelta:
    """Model audio (mu-law bytes, decoded); `audio` is empty if the delta was not base64."""

    response_id: str
    item_id: str
    audio: bytes
    valid: bool = True


@dataclass(frozen=True, slots=True)
class AudioDone:
    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    """Words of the model's spoken answer, interleaved with its audio deltas."""

    response_id: str
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class TranscriptDone:
    response_id: str
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """`status`: completed, cancelled, failed or incomplete; `end_call_ids` from its output;
    `message_item_ids`, the assistant message items it made (in output order); `reason`,
    why it stopped short (`status_details.reason`: turn_detected, client_cancelled...)."""

    response_id: str
    status: str
    end_call_ids: tuple[str, ...]
    message_item_ids: tuple[str, ...] = ()
    reason: str = ""
    # Every completed function call of its output, end_call's included, in output order.
    function_calls: tuple[FunctionCallDone, ...] = ()


@dataclass(frozen=True, slots=True)
class FunctionCallDone:
    """A function call's arguments are complete (`arguments`: JSON text, as the model wrote it)."""

    response_id: str
    call_id: str
    name: str
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """`audio_start_ms`: input audio ms since the session began, prefix padding included."""

    audio_start_ms: int | None
    item_id: str


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int | None
    item_id: str


@dataclass(frozen=True, slots=True)
class InputTranscribed:
    """What the caller said in one turn (input audio transcription)."""

    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class ItemTruncated:
    item_id: str
    audio_end_ms: int | None


@dataclass(frozen=True, slots=True)
class ItemDeleted:
    item_id: str


@dataclass(frozen=True, slots=True)
class ServerError:
    """An `error` event; `client_event_id` names the client event it answers, if any."""

    code: str
    message: str
    param: str
    client_event_id: str


@dataclass(frozen=True, slots=True)
class Ignored:
    type: str


ServerEvent = (
    SessionCreated
    | ResponseCreated
    | AudioDelta
    | AudioDone
    | TranscriptDelta
    | TranscriptDone
    | ResponseDone
    | FunctionCallDone
    | SpeechStarted
    | SpeechStopped
    | InputTranscribed
    | ItemTruncated
    | ItemDeleted
    | ServerError
    | Ignored
)


def _s(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    return value if isinstance(value, str) else ""


def _i(event: dict[str, Any], key: str) -> int | None:
    value = event.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _obj(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


def _audio_delta(event: dict[str, Any]) -> AudioDelta:
    response_id, item_id = _s(event, "response_id"), _s(event, "item_id")
    try:
        audio = binascii.a2b_base64(_s(event, "delta"), strict_mode=True)
    except (binascii.Error, ValueError):
        return AudioDelta(response_id, item_id, b"", valid=False)
    return AudioDelta(response_id, item_id, audio)


def _response_done(event: dict[str, Any]) -> ResponseDone:
    response = _obj(event, "response")
    output = response.get("output")
    listed = output if isinstance(output, list) else []
    items = [item for item in listed if isinstance(item, dict)]
    response_id = _s(response, "id")
    calls = tuple(
        FunctionCallDone(response_id, _s(item, "call_id"), _s(item, "name"), _s(item, "arguments"))
        for item in items
        if item.get("type") == "function_call" and item.get("status", "completed") == "completed"
    )
    end_calls = tuple(call.call_id for call in calls if call.name == END_CALL_TOOL)
    messages = tuple(
        _s(item, "id")
        for item in items
        if item.get("type") == "message" and item.get("role", "assistant") == "assistant"
    )
    reason = _s(_obj(response, "status_details"), "reason")
    return ResponseDone(response_id, _s(response, "status"), end_calls, messages, reason, calls)


def _error(event: dict[str, Any]) -> ServerError:
    error = _obj(event, "error")
    code = _s(error, "code") or _s(error, "type") or "unknown"
    return ServerError(code, _s(error, "message")[:300], _s(error, "param"), _s(error, "event_id"))


_PARSERS: dict[str, Any] = {
    "session.created": lambda e: SessionCreated(_s(_obj(e, "session"), "id")),
    "response.created": lambda e: ResponseCreated(_s(_obj(e, "response"), "id")),
    "response.output_audio.delta": _audio_delta,
    "response.audio.delta": _audio_delta,
    "response.output_audio.done": lambda e: AudioDone(_s(e, "response_id"), _s(e, "item_id")),
    "response.audio.done": lambda e: AudioDone(_s(e, "response_id"), _s(e, "item_id")),
    "response.output_audio_transcript.delta": lambda e: TranscriptDelta(
        _s(e, "response_id"), _s(e, "item_id"), _s(e, "delta")
    ),
    "response.audio_transcript.delta": lambda e: TranscriptDelta(
        _s(e, "response_id"), _s(e, "item_id"), _s(e, "delta")
    ),
    "response.output_audio_transcript.done": lambda e: TranscriptDone(
        _s(e, "response_id"), _s(e, "item_id"), _s(e, "transcript")
    ),
    "response.audio_transcript.done": lambda e: TranscriptDone(
        _s(e, "response_id"), _s(e, "item_id"), _s(e, "transcript")
    ),
    "response.done": _response_done,
    "response.function_call_arguments.done": lambda e: FunctionCallDone(
        _s(e, "response_id"), _s(e, "call_id"), _s(e, "name"), _s(e, "arguments")
    ),
    "input_audio_buffer.speech_started": lambda e: SpeechStarted(
        _i(e, "audio_start_ms"), _s(e, "item_id")
    ),
    "input_audio_buffer.speech_stopped": lambda e: SpeechStopped(
        _i(e, "audio_end_ms"), _s(e, "item_id")
    ),
    "conversation.item.input_audio_transcription.completed": lambda e: InputTranscribed(
        _s(e, "item_id"), _s(e, "transcript")
    ),
    "conversation.item.truncated": lambda e: ItemTruncated(_s(e, "item_id"), _i(e, "audio_end_ms")),
    "conversation.item.deleted": lambda e: ItemDeleted(_s(e, "item_id")),
    "error": _error,
}


def parse_server_event(raw: bytes | str) -> ServerEvent:
    """One server event; raises `RealtimeProtocolError` for text that is not an event."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RealtimeProtocolError("not JSON") from None
    if not isinstance(event, dict):
        raise RealtimeProtocolError("not a JSON object")
    kind = event.get("type")
    if not isinstance(kind, str):
        raise RealtimeProtocolError("type is not a string")
    parser = _PARSERS.get(kind)
    if parser is None:
        return Ignored(kind[:60])
    parsed: ServerEvent = parser(event)
    return parsed


_AUDIO_LIMIT = re.compile(r"(\d+)\s*ms is already shorter")
# How the service refuses a truncate (seen live): past the end of the item's audio,
# before any of it, or a negative `audio_end_ms`. The refusal's `event_id` is null
# even when the truncate carried one.
TRUNCATE_PAST_END = "invalid_value"
TRUNCATE_BEFORE_AUDIO = "unsupported_content_type"
TRUNCATE_NEGATIVE = "integer_below_min_value"
TRUNCATE_UNKNOWN_ITEM = "item_truncate_invalid_item_id"
_ASKED_MS = re.compile(r"shorter than\s*(-?\d+)\s*ms|but got\s*(-?\d+)\s*instead")


def refuses_a_truncate(error: ServerError) -> bool:
    """Whether `error` is the service refusing a `conversation.item.truncate`."""
    if error.code == TRUNCATE_PAST_END:
        return _AUDIO_LIMIT.search(error.message) is not None
    if error.code == TRUNCATE_BEFORE_AUDIO:
        return "truncated" in error.message
    if error.code == TRUNCATE_UNKNOWN_ITEM:
        return True
    return error.code == TRUNCATE_NEGATIVE and "audio_end_ms" in (error.param + error.message)


def refused_length_ms(error: ServerError) -> int | None:
    """The `audio_end_ms` a truncate refusal names as asked ("...shorter than 1000ms",
    "...but got -11 instead"), if it names one: which truncate it answers."""
    match = _ASKED_MS.search(error.message)
    if match is None:
        return None
    return int(match[1] if match[1] is not None else match[2])


def audio_limit_ms(message: str) -> int | None:
    """The item's audio length an `audio_end_ms` error states ("Audio content of 1200ms
    is already shorter than 1300ms"), if it states one."""
    match = _AUDIO_LIMIT.search(message)
    return int(match[1]) if match else None


# --- client events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionConfig:
    instructions: str
    voice: str
    vad_threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    # Empty: no transcript of the caller's words (the model still hears them).
    input_transcription_model: str = ""
    # The language the caller speaks (ISO-639-1), for the transcription; empty: any.
    language: str = ""
    # The host's tools (`session.update`'s shape), besides end_call.
    tools: tuple[dict[str, Any], ...] = ()
    # Names of the people the agent may transfer the caller to: with any, the
    # transfer tool is offered.
    transfer_targets: tuple[str, ...] = ()


def session_update(config: SessionConfig, instructions: str | None = None) -> str:
    """Mu-law in and out (Twilio's format, no transcoding), server VAD for speech events
    only (no answer or cancel of its own), end_call tool."""
    audio_input: dict[str, Any] = {
        "format": {"type": "audio/pcmu"},
        "turn_detection": {
            "type": "server_vad",
            "threshold": config.vad_threshold,
            "prefix_padding_ms": config.prefix_padding_ms,
            "silence_duration_ms": config.silence_duration_ms,
            # The bridge owns the turn (`callcore.turns`): it judges what the caller
            # says while the AI speaks, and asks for the answer when their turn ends.
            "create_response": False,
            "interrupt_response": False,
        },
    }
    if config.input_transcription_model:
        transcription = {"model": config.input_transcription_model}
        if config.language:
            transcription["language"] = config.language
        audio_input["transcription"] = transcription
    tools: list[dict[str, Any]] = [_END_CALL_DEFINITION, *config.tools]
    if config.transfer_targets:
        tools.append(transfer_definition(config.transfer_targets))
    return json.dumps(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": config.instructions if instructions is None else instructions,
                "output_modalities": ["audio"],
                "audio": {
                    "input": audio_input,
                    "output": {"format": {"type": "audio/pcmu"}, "voice": config.voice},
                },
                "tools": tools,
                "tool_choice": "auto",
            },
        }
    )


_END_CALL_DEFINITION: dict[str, Any] = {
    "type": "function",
    "name": END_CALL_TOOL,
    "description": (
        "Hang up the phone call. Call it after your goodbye, when the caller is done or "
        "asks to end the call."
    ),
    "parameters": {
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "Why the call ends."}},
    },
}


def transfer_definition(targets: tuple[str, ...]) -> dict[str, Any]:
    """The transfer tool, offering `targets` (names; the numbers stay with the bridge)."""
    return {
        "type": "function",
        "name": TRANSFER_TOOL,
        "description": (
            "Transfer the caller to a person. First tell the caller in one short sentence "
            "that you are putting them through, then call this. Targets: "
            + ", ".join(targets)
            + "."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "target": {"type": "string", "enum": list(targets)},
                "reason": {"type": "string", "description": "Why the caller is transferred."},
            },
            "required": ["target"],
        },
    }


def input_audio_append(payload_b64: str) -> str:
    # Built by hand: this runs 50 times a second per call, and the payload is
    # base64 (no characters that need escaping).
    return f'{{"type":"input_audio_buffer.append","audio":"{payload_b64}"}}'


def response_create(instructions: str | None = None, tools: bool = True) -> str:
    """Ask for an answer; `tools` False: one that may call no tool (a holding line)."""
    event: dict[str, Any] = {"type": "response.create"}
    response: dict[str, Any] = {}
    if instructions:
        response["instructions"] = instructions
    if not tools:
        response["tool_choice"] = "none"
    if response:
        event["response"] = response
    return json.dumps(event)


def input_audio_commit() -> str:
    """Make the input buffered so far a user item (server VAD does it by itself)."""
    return json.dumps({"type": "input_audio_buffer.commit"})


def session_probe() -> str:
    """A `session.update` that changes nothing: every live session answers `session.updated`."""
    return json.dumps({"type": "session.update", "session": {"type": "realtime"}})


def response_cancel() -> str:
    return '{"type":"response.cancel"}'


def item_truncate(item_id: str, audio_end_ms: int, event_id: str = "") -> str:
    event: dict[str, Any] = {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }
    if event_id:
        event["event_id"] = event_id
    return json.dumps(event)


def item_delete(item_id: str) -> str:
    return json.dumps({"type": "conversation.item.delete", "item_id": item_id})


def function_call_output(call_id: str, output: dict[str, Any] | str) -> str:
    """A function call's result for the model (`output`: JSON text, or a dict made so)."""
    return json.dumps(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": call_id,
                "output": output if isinstance(output, str) else json.dumps(output),
            },
        }
    )


def function_call_item(call_id: str, name: str, arguments: str) -> str:
    """A function call the client puts in the conversation (one the model made in a
    session since replaced: its output follows)."""
    return json.dumps(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call",
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            },
        }
    )


def message_item(role: str, text: str) -> str:
    """A text turn of the conversation so far (to seed a new session with it)."""
    content_type = "input_text" if role == "user" else "output_text"
    return json.dumps(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": role,
                "content": [{"type": content_type, "text": text}],
            },
        }
    )
