"""What the call core hands its shell, in order: messages to send, records to keep, the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callcore.records import EndReason, RecordKind


@dataclass(frozen=True, slots=True)
class ToTwilio:
    """A text frame for the media stream.

    `generation` is set on the audio and marks of a playout generation: one
    still queued when a barge-in cancels that generation is never sent.
    """

    text: str
    generation: int | None = None


@dataclass(frozen=True, slots=True)
class Clear:
    """Twilio `clear` for a barge-in: the shell sends it, then calls `CallCore.clear_sent`."""

    text: str


@dataclass(frozen=True, slots=True)
class ToModel:
    """A client event for the Realtime session, sent after every earlier one."""

    text: str


@dataclass(frozen=True, slots=True)
class Record:
    """A row of the call's playout log; `at` is monotonic seconds."""

    kind: RecordKind
    at: float
    playout_status: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BargeInRecord:
    """A `BargeInEvent` row (its fields by name); `at` is monotonic seconds."""

    at: float
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """Fields of the call's own row; `ended_at` (monotonic seconds) becomes its end time."""

    fields: dict[str, Any]
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class Log:
    """A line for the call's log (%-style; no audio, no secrets)."""

    level: int
    message: str
    args: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplaceModel:
    """The model session went quiet or away: close it and open a new one.

    The client events that follow (the conversation so far, maybe a
    `response.create`) are for the new session; the shell reports back with
    `CallCore.model_replaced` or `model_replace_failed`.
    """

    attempt: int


@dataclass(frozen=True, slots=True)
class EndOfCall:
    """The call is over: close both sockets. Everything to record came before it."""

    reason: EndReason


Output = (
    ToTwilio
    | Clear
    | ToModel
    | Record
    | BargeInRecord
    | CallUpdate
    | Log
    | ReplaceModel
    | EndOfCall
)
