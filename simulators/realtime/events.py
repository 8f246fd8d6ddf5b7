"""Builders for Realtime server event and object shapes, in GA or older beta naming.

Shaped after public captures of the real service (`tests/data/real-traffic/`):
GA items carry no `object` key (beta ones do), a response's usage is nested
token details, `error.event_id` and `error.param` are null where the service
leaves them so, transcript deltas carry an `obfuscation` string.
"""

from __future__ import annotations

import itertools
import random
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]

_counter = itertools.count(1)
_run_prefix = secrets.token_hex(3)


def new_id(prefix: str) -> str:
    """A unique id in the service's style, e.g. `item_3f9a2c000001`."""
    return f"{prefix}_{_run_prefix}{next(_counter):014d}"


@dataclass(frozen=True)
class EventNames:
    """Event and content names that differ between the GA and the beta protocol."""

    audio_delta: str
    audio_done: str
    transcript_delta: str
    transcript_done: str
    item_added: str
    item_done: str | None
    output_audio_content: str
    # Beta items say `"object": "realtime.item"`; GA items have no such key.
    item_object: bool
    # GA transcript deltas carry a random-length `obfuscation` string beside the words.
    obfuscated: bool


GA_NAMES = EventNames(
    audio_delta="response.output_audio.delta",
    audio_done="response.output_audio.done",
    transcript_delta="response.output_audio_transcript.delta",
    transcript_done="response.output_audio_transcript.done",
    item_added="conversation.item.added",
    item_done="conversation.item.done",
    output_audio_content="output_audio",
    item_object=False,
    obfuscated=True,
)
BETA_NAMES = EventNames(
    audio_delta="response.audio.delta",
    audio_done="response.audio.done",
    transcript_delta="response.audio_transcript.delta",
    transcript_done="response.audio_transcript.done",
    item_added="conversation.item.created",
    item_done=None,
    output_audio_content="audio",
    item_object=True,
    obfuscated=False,
)

DEFAULT_TURN_DETECTION: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}


def event(event_type: str, **fields: Any) -> Event:
    """A server event with a fresh `event_id`."""
    return {"type": event_type, "event_id": new_id("event"), **fields}


def error_event(
    code: str,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    param: str | None = None,
    client_event_id: str | None = None,
) -> Event:
    """An `error` event; the connection stays open after it, as with the real service.

    The service leaves `error.event_id` null even when the client event it refuses
    carried one (every refusal reported live); pass `client_event_id` only to play
    a provider that does fill it in.
    """
    return event(
        "error",
        error={
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    )


def default_session(model: str) -> dict[str, Any]:
    """The session the service reports in `session.created` before any update."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time()) + 3600,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(DEFAULT_TURN_DETECTION),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1.0,
            },
        },
    }


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge a partial `session.update` into the current session (nested dicts merge)."""
    merged = dict(base)
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict) and key != "format":
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def _item(names: EventNames, item_id: str, **fields: Any) -> dict[str, Any]:
    if names.item_object:
        return {"id": item_id, "object": "realtime.item", **fields}
    return {"id": item_id, **fields}


def assistant_item(
    names: EventNames, item_id: str, status: str, content: list[dict[str, Any]]
) -> dict[str, Any]:
    return _item(names, item_id, type="message", status=status, role="assistant", content=content)


def user_audio_item(names: EventNames, item_id: str) -> dict[str, Any]:
    content = [{"type": "input_audio", "transcript": None}]
    return _item(names, item_id, type="message", status="completed", role="user", content=content)


def function_call_item(
    names: EventNames, item_id: str, status: str, name: str, call_id: str, arguments: str
) -> dict[str, Any]:
    """A function call item, keys in the service's order (`name` before `call_id`)."""
    return _item(
        names,
        item_id,
        type="function_call",
        status=status,
        name=name,
        call_id=call_id,
        arguments=arguments,
    )


def function_call_output_item(
    names: EventNames, item_id: str, call_id: str, output: str
) -> dict[str, Any]:
    """A `function_call_output` item the client created, as the service echoes it."""
    return _item(
        names,
        item_id,
        type="function_call_output",
        status="completed",
        call_id=call_id,
        output=output,
    )


def usage(audio_ms: int, transcript: str) -> dict[str, Any]:
    """A response's token usage, in the service's nested shape (figures made up, but
    growing with the answer as real ones do)."""
    audio_tokens = audio_ms // 100
    text_tokens = len(transcript.split())
    return {
        "total_tokens": 120 + audio_tokens + text_tokens,
        "input_tokens": 120,
        "output_tokens": audio_tokens + text_tokens,
        "input_token_details": {
            "text_tokens": 60,
            "audio_tokens": 60,
            "image_tokens": 0,
            "cached_tokens": 48,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 48, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens},
    }


def rate_limits() -> Event:
    """What the service sends as a response starts."""
    limits = [{"name": "tokens", "limit": 40000, "remaining": 38490, "reset_seconds": 2.265}]
    return event("rate_limits.updated", rate_limits=limits)


_OBFUSCATION_ALPHABET = string.ascii_letters + string.digits


def obfuscation(rng: random.Random) -> str:
    """The random-length padding the service puts beside each transcript delta (from the
    response's seeded generator: a scenario's run is the same run after run)."""
    return "".join(rng.choices(_OBFUSCATION_ALPHABET, k=rng.randint(3, 16)))


def response_object(
    response_id: str,
    status: str,
    output: list[dict[str, Any]],
    *,
    status_details: dict[str, Any] | None = None,
    output_format: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": status_details,
        "output": output,
        "conversation_id": "conv_simulated",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": output_format or {"type": "audio/pcmu"}, "voice": "marin"}},
        "usage": usage,
        "metadata": None,
    }
