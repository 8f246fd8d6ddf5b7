"""The vocabulary of a call's record: its state, what happened, why it ended, what the review finds.

The one spelling of each word, and the facts that go with it: the core
writes them, the Django models take their choices from them, and the shell,
the front door and the review tools read them from here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class _Labelled(enum.StrEnum):
    """A word stored as its value, with the label a reviewer reads."""

    label: str

    def __new__(cls, value: str, label: str) -> _Labelled:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


def choices(words: Iterable[_Labelled]) -> list[tuple[str, str]]:
    """`(value, label)` pairs, as a model field's `choices` takes them."""
    return [(word.value, word.label) for word in words]


class CallState(_Labelled):
    """A call's status: Twilio's words, and `streaming` while our media stream is up."""

    RINGING = "ringing", "Ringing"
    STREAMING = "streaming", "Streaming"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no-answer", "No answer"
    CANCELED = "canceled", "Canceled"
    FAILED = "failed", "Failed"

    @property
    def final(self) -> bool:
        """A status Twilio reports at the end of a call; any other is still live."""
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {CallState.COMPLETED, CallState.BUSY, CallState.NO_ANSWER, CallState.CANCELED, CallState.FAILED}
)
# A call that ended without our stream ending it: its end reason is Twilio's status.
TWILIO_END_PREFIX = "twilio_"


def twilio_end_reason(state: str) -> str:
    """The end reason of a call whose end only Twilio reported (`twilio_completed`...)."""
    return TWILIO_END_PREFIX + state


class RecordKind(_Labelled):
    """A row of a call's playout log."""

    STREAM_STARTED = "stream_started", "Stream started"
    MODEL_SESSION_OPENED = "model_session_opened", "Model session opened"
    RESPONSE_STARTED = "response_started", "Response started"
    PLAYOUT_STARTED = "playout_started", "Playout started"
    PLAYOUT_ENDED = "playout_ended", "Playout ended"
    RESPONSE_DONE = "response_done", "Response done"
    SPEECH_STARTED = "speech_started", "Caller speech started"
    SPEECH_STOPPED = "speech_stopped", "Caller speech stopped"
    BARGE_IN = "barge_in", "Barge-in"
    TURN_VERDICT = "turn_verdict", "Caller sound judged (backchannel, noise, echo, interruption)"
    ANSWER_PAUSED = "answer_paused", "Answer paused while a caller sound is judged"
    ANSWER_RESUMED = "answer_resumed", "Answer resumed where the caller stopped hearing it"
    USER_SPEECH_AI_SILENT = "user_speech_ai_silent", "User speech while AI silent"
    CANCELLED = "cancelled", "Response cancelled"
    TRUNCATED = "truncated", "Model memory truncated"
    TRUNCATE_REJECTED = "truncate_rejected", "Truncate rejected (retried, or item deleted)"
    UNHEARD_DELETED = "unheard_deleted", "Items of a cut answer never heard, deleted"
    END_CALL_REQUESTED = "end_call_requested", "End of call requested"
    DRAIN_STARTED = "drain_started", "Drain started"
    DRAIN_COMPLETED = "drain_completed", "Drain completed"
    HANGUP_CANCELLED = "hangup_cancelled", "Hangup cancelled"
    DTMF = "dtmf", "DTMF digit"
    MARK_STATS = "mark_stats", "Mark echo statistics"
    MODEL_ERROR = "model_error", "Model error"
    MODEL_FAULT = "model_fault", "Model went quiet or away"
    MODEL_RECOVERED = "model_recovered", "Model session replaced, conversation carried over"
    CONVERSATION_TURN = "conversation_turn", "A turn of the conversation, in words"
    PROTOCOL_ERROR = "protocol_error", "Protocol error"
    TOOL_CALL = "tool_call", "Tool call"
    TOOL_HOLD = "tool_hold", "Holding line while a tool runs"
    TRANSFER_REQUESTED = "transfer_requested", "Transfer to a person requested"
    KEYPAD_INPUT = "keypad_input", "Keypad digits given to the model"
    STREAM_ENDED = "stream_ended", "Stream ended"


class AfterStream(enum.Enum):
    """What Twilio is told to do when our media stream closes (`<Connect action>`)."""

    HANG_UP = "hang_up"  # the call was meant to end, or nobody is left to hear
    HAND_OVER = "hand_over"  # a new stream, on a process that is not stopping
    APOLOGISE = "apologise"  # say `CALL_APOLOGY`, then hang up: never silence
    DIAL = "dial"  # `<Dial>` the transfer target the call was handed to


class EndReason(_Labelled):
    """Why the bridge ended a call (`CallSession.end_reason`; Twilio's callbacks add `twilio_*`).

    Each reason carries its facts: who ended the call (`ended_by`, in words),
    whether the caller was already gone (nothing left to tell them), how the
    media stream closes (`close_code`), and what Twilio does next.
    """

    ended_by: str
    caller_gone: bool
    close_code: int
    after_stream: AfterStream

    def __new__(
        cls,
        value: str,
        label: str,
        ended_by: str,
        caller_gone: bool = False,
        close_code: int = 1000,
        after_stream: AfterStream = AfterStream.APOLOGISE,
    ) -> EndReason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.ended_by = ended_by
        member.caller_gone = caller_gone
        member.close_code = close_code
        member.after_stream = after_stream
        return member

    CALLER_HANGUP = (
        "caller_hangup", "Caller hung up (stop)", "the caller hung up",
        True, 1000, AfterStream.HANG_UP,
    )  # fmt: skip
    CALLER_DISCONNECTED = (
        "caller_disconnected", "Caller's stream went away without a stop",
        "the caller's line dropped", True, 1000, AfterStream.HANG_UP,
    )  # fmt: skip
    AGENT_HANGUP = (
        "agent_hangup", "The AI ended the call", "the AI said goodbye",
        False, 1000, AfterStream.HANG_UP,
    )  # fmt: skip
    TRANSFERRED = (
        "transferred", "Transferred to a person", "the AI transferred the call",
        False, 1000, AfterStream.DIAL,
    )  # fmt: skip
    MODEL_DISCONNECTED = (
        "model_disconnected", "The model's session closed",
        "the bridge: the model's session closed",
    )  # fmt: skip
    MODEL_CONNECT_FAILED = (
        "model_connect_failed", "The model could not be reached",
        "the bridge: the model could not be reached",
    )  # fmt: skip
    MODEL_UNRESPONSIVE = (
        "model_unresponsive", "The model went quiet and could not be replaced",
        "the bridge: the model went quiet",
    )  # fmt: skip
    PROTOCOL_ERRORS = (
        "protocol_errors", "Too many malformed Twilio messages",
        "the bridge: malformed Twilio messages", False, 4400,
    )  # fmt: skip
    SERVER_SHUTDOWN = (
        "server_shutdown", "The server shut down (the call is handed over)",
        "the server shut down (handed over)", False, 1012, AfterStream.HAND_OVER,
    )  # fmt: skip
    SERVER_LOST = (
        "server_lost", "The process holding the call died", "the server process died",
    )  # fmt: skip
    OPERATOR_HANGUP = (
        "operator_hangup", "An operator ended the call", "an operator",
        False, 1000, AfterStream.HANG_UP,
    )  # fmt: skip
    INTERNAL_ERROR = (
        "internal_error", "A fault in the bridge", "the bridge: an internal fault", False, 1011,
    )  # fmt: skip

    @classmethod
    def of(cls, value: str) -> EndReason | None:
        """The reason stored as `value`; None for Twilio's `twilio_*` and for no reason."""
        return cls.__members__.get(value.upper()) if value == value.lower() else None


def ended_by(end_reason: str) -> str:
    """Who ended a call with this stored end reason, in words (the reason itself if unknown)."""
    reason = EndReason.of(end_reason)
    if reason is not None:
        return reason.ended_by
    if end_reason.startswith(TWILIO_END_PREFIX):
        return f"Twilio reported the call {end_reason.removeprefix(TWILIO_END_PREFIX)}"
    return end_reason


def after_stream(end_reason: str | None) -> AfterStream:
    """What Twilio does once a call's stream closed with this stored end reason.

    An end not written (yet), or one only Twilio reported, is apologised for:
    the caller is never left in silence.
    """
    reason = EndReason.of(end_reason or "")
    return AfterStream.APOLOGISE if reason is None else reason.after_stream


class FindingRule(_Labelled):
    """What the review finds suspect in a call: a rule's name and its words in a list."""

    MISSED_BARGE_IN = "missed_barge_in", "missed barge-in"
    DRAIN_BEFORE_FINAL_MARK = "drain_before_final_mark", "goodbye cut"
    SLOW_REACTION = "slow_reaction", "slow reaction"
    MISSING_ENDED_AT = "missing_ended_at", "no end recorded"
    SLOW_LINK = "slow_link", "slow link"
    LONG_RESUME_GAP = "long_resume_gap", "long gap in an answer"
    LATE_INTERRUPTION = "late_interruption", "interruption heard late"


def rule_label(rule: str) -> str:
    """A finding rule's words for a list (an unknown rule's name, spaced out)."""
    known = FindingRule.__members__.get(rule.upper())
    return known.label if known is not None and known == rule else rule.replace("_", " ")


@dataclass(frozen=True, slots=True)
class BargeInFigures:
    """A barge-in's figures: the one spelling of each (a `BargeInEvent` row has these columns).

    Durations in ms; offsets since the stream started. `reaction_ms` is from
    the speech event's arrival to the `clear` sent: the shell's to measure.
    """

    response_id: str
    item_id: str
    playout_remaining_ms: int  # what the caller had still to hear, by the estimate
    pending_ms: int  # our queue, dropped
    unplayed_ms: int  # Twilio's buffer, cleared
    audio_end_ms: int | None  # what the caller heard of the item: the truncate point
    response_cancelled: bool  # the model was still generating it
    speech_onset_offset_ms: int | None  # where the caller's speech really began
    heard_at_onset_ms: int | None  # what the caller had heard of the item at that onset
    heard_text: str  # the answer's words the caller heard
    cut_text: str  # the answer's words cut off unheard
    reaction_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ItemHeard:
    """What a barge-in made of one audio item of the answers it cut: `outcome` is `kept`
    (heard whole), `truncated` (to the `heard_ms` the caller heard) or `deleted` (never
    heard); `text`, its words the caller heard."""

    item_id: str
    outcome: str
    heard_ms: int
    text: str = ""
