"""Declarative scripts for one simulated Realtime session: replies, pacing and faults."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Part:
    """One more audio item of a response: `audio_ms` of its own tone, and its words.

    With `first_audio_after_ms` the item is announced (`output_item.added`, its part)
    that long before its first audio (model time): the model is still working on it.
    """

    audio_ms: int
    transcript: str = "And there is more."
    first_audio_after_ms: int = 0


@dataclass(frozen=True)
class ToolCall:
    """A function call the model makes in a response, after the response's audio.

    `arguments` go out as the JSON text the service writes (compact); a `str` is
    sent as it is (malformed JSON included). An empty `call_id` is generated
    (`call_...`) each time the call is made.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    call_id: str = ""

    @property
    def arguments_text(self) -> str:
        """The arguments as the model writes them: JSON text, no spaces."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    """One model response: `audio_ms` of the response's tone, a transcript, maybe tool calls.

    `tool_calls` follow the audio items, in order, each a `function_call` item of
    its own; `end_call` adds one more, named `end_call`, last. `audio_ms=0` is a
    response with no audio message at all, only its function calls (the service
    often answers a tool's result or a request so). With `more_items`, further
    audio items follow the first in the same response (newer models,
    `gpt-realtime-2`, do so), each on a tone of its own (`signals.tone_for_item`);
    with `late_item_done`, each item's `output_audio.done` (and the close of its
    levels) comes only after the next item's first delta.
    """

    audio_ms: int
    transcript: str = "This is a simulated reply."
    end_call: bool = False
    end_call_arguments: Mapping[str, Any] = field(default_factory=dict)
    more_items: tuple[Part, ...] = ()
    late_item_done: bool = False
    latency_ms: int = 0
    """Real milliseconds from `response.created` to its first audio: the service's
    time to first audio (about 300-1000 ms live; 0, the stand-in's default, is none)."""
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def parts(self) -> tuple[Part, ...]:
        """Every audio item of the response, the first included (none at `audio_ms=0`)."""
        first = (Part(self.audio_ms, self.transcript),) if self.audio_ms > 0 else ()
        return (*first, *self.more_items)

    @property
    def calls(self) -> tuple[ToolCall, ...]:
        """Every function call of the response, in order, `end_call` included."""
        if not self.end_call:
            return self.tool_calls
        return (*self.tool_calls, ToolCall("end_call", self.end_call_arguments))


@dataclass(frozen=True)
class Disconnect:
    """Drop the connection after `after_responses` responses have completed.

    With `after_deltas` set, drop during the next response instead, once that many audio
    deltas were sent. `close_code` None aborts the TCP connection with no close frame;
    otherwise a close frame with that code (e.g. 1011) is sent.
    """

    after_responses: int = 0
    after_deltas: int | None = None
    close_code: int | None = None
    reason: str = "simulated server fault"


@dataclass(frozen=True)
class SendError:
    """Send an unsolicited `error` event after `after_responses` responses have completed."""

    after_responses: int = 0
    code: str = "server_error"
    message: str = "The server had an error while processing your request."
    error_type: str = "server_error"


@dataclass(frozen=True)
class GoSilent:
    """Stop sending events after `after_responses` responses have completed (with
    `after_deltas`, during the next response once that many audio deltas were sent).

    The connection stays up: the service went quiet, not away. With
    `stop_reading` the session also stops reading its socket (nothing more is
    processed, pings go unanswered), like a hung server process.
    """

    after_responses: int = 0
    after_deltas: int | None = None
    stop_reading: bool = False


Fault = Disconnect | SendError | GoSilent


@dataclass(frozen=True)
class RealtimeScript:
    """What one session does.

    Each response (from the client's `response.create`, or automatic after the caller stops
    speaking) takes the next reply in `replies`; after the last one, `default_reply` is used.
    """

    replies: tuple[Reply, ...] = ()
    default_reply: Reply = Reply(audio_ms=600, transcript="Anything else?")
    speed: float = 6.0
    """How much faster than real time audio is produced (the real service bursts too)."""
    delta_ms_range: tuple[int, int] = (40, 240)
    """Audio deltas vary in duration between these bounds (multiples of 20 ms)."""
    late_deltas_after_cancel: int = 2
    """Already-produced deltas still sent after a cancel, before `response.done`."""
    speech_detect_ms: int = 160
    """How long speech must persist in the input before `speech_started` fires."""
    faults: tuple[Fault, ...] = ()
    seed: int = 7
    reject_truncates: int = 0
    """The first this many `conversation.item.truncate` are refused, as the service
    refuses an item it will not truncate (`unsupported_content_type`, "Only model
    output audio messages can be truncated")."""
    refuse_truncates_with: tuple[str, ...] = ()
    """The first truncates are refused with these codes, in order, each with the message
    the service sends for it (`invalid_value`: the item's audio "is already shorter";
    `unsupported_content_type`; `integer_below_min_value`)."""
    held_short_ms: int = 0
    """The service holds this much less of each answer's audio than it streamed: a
    truncate beyond what it holds is refused, stating the length it has."""
    back_to_back: int = 0
    """The first this many responses are each followed at once by the next (no input)."""
    response_offset: int = 0
    """Responses are numbered (and toned) from this + 1: a replacement session
    carries on the numbering of the call's first."""
    refuse_connection: bool = False
    """The handshake is refused (HTTP 503, as an overloaded service does)."""
    caller_words: tuple[str, ...] = ()
    """What input transcription reports the caller said, turn by turn (when the session
    asks for transcription); past the last, a numbered placeholder."""

    def reply_for(self, response_index: int) -> Reply:
        """Reply for the 1-based index of a response in the session."""
        if response_index <= len(self.replies):
            return self.replies[response_index - 1]
        return self.default_reply

    def caller_turn(self, turn_index: int) -> str:
        """The transcript of the caller's 1-based turn `turn_index`."""
        if turn_index <= len(self.caller_words):
            return self.caller_words[turn_index - 1]
        return f"(the caller's words, turn {turn_index})"


ScriptFactory = Callable[[], RealtimeScript]
