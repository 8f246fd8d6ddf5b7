"""Every input path fuzzed: random and mutated Twilio messages and Realtime events, through the
parser and the call's decisions. Nothing raises, and no input ends a call except by a named rule.

Each path runs 10,000 examples: realistic messages of every kind with parts
replaced by any JSON value or removed, truncated or corrupted text, plain
JSON of any shape and text that is not JSON. Hypothesis draws one seed per
example and the messages are built from it (drawing every value through
Hypothesis cost 20 ms an example; this costs about 1.4 ms). A `CallCore`
takes them in order with a clock that moves, and its timer runs between
them, as the shell would run it.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcore import CallCore, CoreConfig, EndReason
from callcore.protocol import realtime as rt
from callcore.protocol.twilio import (
    Dtmf,
    Mark,
    Media,
    TwilioProtocolError,
    parse_twilio_message,
)

EXAMPLES = 10_000
STREAM_SID = "MZ" + "1" * 32
CALL_SID = "CA" + "2" * 32
AUDIO = base64.b64encode(bytes(range(160))).decode()

_SCALARS: list[Any] = [
    None, True, False, 0, -1, 1, 2**63, -(2**70), 0.5, float("inf"), "", "x", AUDIO,
    "po-g0-1", "resp_1", "item_1", "end_call", "!!", "\u0000", "é" * 40, "9" * 400,
]  # fmt: skip


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value, small: scalars that matter to the parsers, lists, objects."""
    roll = rng.random()
    if depth >= 2 or roll < 0.6:
        return rng.choice(_SCALARS)
    if roll < 0.7:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(12)))
    if roll < 0.85:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["type", "event", "id", "delta", "media", "payload", "name", "error", rng.choice("abc")]
    return {rng.choice(keys): _json_value(rng, depth + 1) for _ in range(rng.randrange(4))}


TWILIO_TEMPLATES: list[dict[str, Any]] = [
    {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "streamSid": STREAM_SID,
            "callSid": CALL_SID,
            "accountSid": "AC" + "3" * 32,
            "tracks": ["inbound"],
            "customParameters": {"token": "x"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": STREAM_SID,
    },
    {
        "event": "media",
        "sequenceNumber": "2",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": AUDIO},
        "streamSid": STREAM_SID,
    },
    {"event": "mark", "sequenceNumber": "3", "streamSid": STREAM_SID, "mark": {"name": "po-g0-1"}},
    {
        "event": "dtmf",
        "streamSid": STREAM_SID,
        "sequenceNumber": "4",
        "dtmf": {"track": "inbound_track", "digit": "1"},
    },
    {
        "event": "stop",
        "sequenceNumber": "5",
        "streamSid": STREAM_SID,
        "stop": {"callSid": CALL_SID},
    },
]

REALTIME_TEMPLATES: list[dict[str, Any]] = [
    {"type": "session.created", "session": {"id": "sess_1", "type": "realtime"}},
    {
        "type": "response.created",
        "response": {"id": "resp_1", "status": "in_progress", "output": []},
    },
    {
        "type": "response.output_audio.delta",
        "response_id": "resp_1",
        "item_id": "item_1",
        "delta": AUDIO,
    },
    {"type": "response.audio.delta", "response_id": "resp_1", "item_id": "item_1", "delta": AUDIO},
    {"type": "response.output_audio.done", "response_id": "resp_1", "item_id": "item_1"},
    {
        "type": "response.output_audio_transcript.delta",
        "response_id": "resp_1",
        "item_id": "item_1",
        "delta": "Hello",
    },
    {
        "type": "response.audio_transcript.done",
        "response_id": "resp_1",
        "item_id": "item_1",
        "transcript": "Hello there",
    },
    {
        "type": "response.done",
        "response": {
            "id": "resp_1",
            "status": "completed",
            "output": [{"type": "function_call", "name": "end_call", "call_id": "call_1"}],
        },
    },
    {
        "type": "response.function_call_arguments.done",
        "response_id": "resp_1",
        "call_id": "call_1",
        "name": "end_call",
    },
    {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1000, "item_id": "item_u"},
    {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1500, "item_id": "item_u"},
    {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_u",
        "transcript": "Hi",
    },
    {"type": "conversation.item.truncated", "item_id": "item_1", "audio_end_ms": 300},
    {"type": "conversation.item.deleted", "item_id": "item_1"},
    {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "x",
            "message": "y",
            "event_id": "truncate_1",
        },
    },
    {"type": "session.updated", "session": {"type": "realtime"}},
]


def _paths(node: Any, into: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) of a JSON value, depth first."""
    if isinstance(node, dict):
        for key in list(node):
            into.append((node, key))
            _paths(node[key], into)
    elif isinstance(node, list):
        for index in range(len(node)):
            into.append((node, index))
            _paths(node[index], into)
    return into


def _mutate(rng: random.Random, template: dict[str, Any]) -> Any:
    """The template with up to three values replaced by any JSON value, or removed."""
    message: Any = json.loads(json.dumps(template))
    for _ in range(rng.randrange(4)):
        paths = _paths(message, [])
        if not paths:
            return _json_value(rng)
        parent, key = rng.choice(paths)
        if rng.random() < 0.3 and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = _json_value(rng)
    return message


def random_text(rng: random.Random, templates: list[dict[str, Any]]) -> str:
    """One message: mostly a realistic one, mutated; sometimes cut short, corrupted,
    plain JSON of any shape, or not JSON at all."""
    roll = rng.random()
    if roll < 0.05:
        return "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(40)))
    message = _json_value(rng) if roll < 0.15 else _mutate(rng, rng.choice(templates))
    text = json.dumps(message)
    damage = rng.random()
    if damage < 0.1:
        return text[: rng.randrange(len(text) + 1)]  # truncated mid-message
    if damage < 0.15:
        index = rng.randrange(max(len(text), 1))
        return text[:index] + "\x00{" + text[index + 1 :]  # a corrupted byte
    return text


def random_texts(seed: int, templates: list[dict[str, Any]]) -> tuple[list[str], float]:
    """A call's worth of messages, and the gap between them (s), from one seed."""
    rng = random.Random(seed)
    texts = [random_text(rng, templates) for _ in range(rng.randrange(1, 9))]
    return texts, rng.choice([0.0, 0.001, 0.02, 0.1, 0.4, 3.0])


def new_core() -> CallCore:
    core = CallCore(CoreConfig(stream_sid=STREAM_SID, greeting_instructions="Greet."), 0.0)
    core.model_opened(0.0)
    drain(core)
    return core


def run_timers(core: CallCore, now: float) -> None:
    deadline = core.next_timer()
    if deadline is not None and deadline <= now:
        core.timer(now)
    drain(core)


def drain(core: CallCore) -> None:
    while core.pop_output() is not None:
        pass


# What may end a call fed nothing but these messages: too many malformed Twilio
# messages, the AI's own goodbye, or a model that stops answering.
NAMED_ENDS = {
    None,
    EndReason.PROTOCOL_ERRORS,
    EndReason.AGENT_HANGUP,
    EndReason.MODEL_UNRESPONSIVE,
}

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(seed=st.integers(0, 2**64 - 1))
def test_any_twilio_input_is_parsed_or_refused_and_never_breaks_the_call(seed: int) -> None:
    texts, gap = random_texts(seed, TWILIO_TEMPLATES)
    core = new_core()
    now = 0.0
    for text in texts:
        now += gap
        try:
            message = parse_twilio_message(text)
        except TwilioProtocolError as error:
            core.protocol_error(error.reason or "unnamed", now)
        else:
            match message:
                case Media():
                    core.caller_audio(message, now)
                case Mark():
                    core.mark_echoed(message.name, now)
                case Dtmf():
                    core.caller_dtmf(message.digit, now)
                case _:
                    pass
        run_timers(core, now)
    assert core.ended in NAMED_ENDS


@FUZZ
@given(seed=st.integers(0, 2**64 - 1))
def test_any_realtime_event_is_parsed_or_skipped_and_never_breaks_the_call(seed: int) -> None:
    raws, gap = random_texts(seed, REALTIME_TEMPLATES)
    core = new_core()
    now = 0.0
    for raw in raws:
        now += gap
        try:
            event = rt.parse_server_event(raw)
        except rt.RealtimeProtocolError as error:
            core.model_unreadable(error.reason, now)
        else:
            core.model_event(event, now)
        run_timers(core, now)
    assert core.ended in NAMED_ENDS
