"""OpenAI Realtime client events, built as JSON text for `send_raw`.

The audio path sends raw JSON: the SDK's typed helpers run a type-driven
transform on every call, which was the largest CPU cost of a bridge at 50
frames a second. Server events are read with `json.loads` and branched on
their `type` string (GA names, and the older beta names some providers send).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

END_CALL_TOOL = "end_call"

AUDIO_DELTA = frozenset({"response.output_audio.delta", "response.audio.delta"})
AUDIO_DONE = frozenset({"response.output_audio.done", "response.audio.done"})


@dataclass(frozen=True, slots=True)
class SessionConfig:
    instructions: str
    voice: str
    vad_threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


def session_update(config: SessionConfig) -> str:
    """Mu-law in and out (Twilio's format, no transcoding), server VAD, end_call tool."""
    return json.dumps(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": config.instructions,
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcmu"},
                        "turn_detection": {
                            "type": "server_vad",
                            "threshold": config.vad_threshold,
                            "prefix_padding_ms": config.prefix_padding_ms,
                            "silence_duration_ms": config.silence_duration_ms,
                            "create_response": True,
                            "interrupt_response": True,
                        },
                    },
                    "output": {"format": {"type": "audio/pcmu"}, "voice": config.voice},
                },
                "tools": [
                    {
                        "type": "function",
                        "name": END_CALL_TOOL,
                        "description": (
                            "Hang up the phone call. Call it after your goodbye, when the "
                            "caller is done or asks to end the call."
                        ),
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "reason": {"type": "string", "description": "Why the call ends."}
                            },
                        },
                    }
                ],
                "tool_choice": "auto",
            },
        }
    )


def input_audio_append(payload_b64: str) -> str:
    # Built by hand: this runs 50 times a second per call, and the payload is
    # base64 (no characters that need escaping).
    return f'{{"type":"input_audio_buffer.append","audio":"{payload_b64}"}}'


def response_create(instructions: str | None = None) -> str:
    event: dict[str, Any] = {"type": "response.create"}
    if instructions:
        event["response"] = {"instructions": instructions}
    return json.dumps(event)


def response_cancel() -> str:
    return '{"type":"response.cancel"}'


def item_truncate(item_id: str, audio_end_ms: int) -> str:
    return json.dumps(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": audio_end_ms,
        }
    )


def item_delete(item_id: str) -> str:
    return json.dumps({"type": "conversation.item.delete", "item_id": item_id})


def function_call_output(call_id: str, output: dict[str, Any]) -> str:
    return json.dumps(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": call_id,
                "output": json.dumps(output),
            },
        }
    )


def end_call_ids(response: dict[str, Any]) -> list[str]:
    """`call_id`s of end_call function calls among a `response.done`'s output items."""
    output = response.get("output") or []
    return [
        str(item.get("call_id", ""))
        for item in output
        if isinstance(item, dict)
        and item.get("type") == "function_call"
        and item.get("name") == END_CALL_TOOL
    ]
