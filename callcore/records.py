"""The vocabulary of a call's record: its state, what happened, and why it ended.

The one spelling of each word: the core writes them, the Django models
(`calls.models.CallStatus`, `PlayoutKind`, `EndReason`) are made from them,
and the review tools read them from here.
"""

from __future__ import annotations

import enum


class CallState(enum.StrEnum):
    """A call's status: Twilio's words, and `streaming` while our media stream is up."""

    label: str

    def __new__(cls, value: str, label: str) -> CallState:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    RINGING = "ringing", "Ringing"
    STREAMING = "streaming", "Streaming"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no-answer", "No answer"
    CANCELED = "canceled", "Canceled"
    FAILED = "failed", "Failed"


# Statuses Twilio reports at the end of a call; anything else is still live.
FINAL_STATES = frozenset(
    {CallState.COMPLETED, CallState.BUSY, CallState.NO_ANSWER, CallState.CANCELED, CallState.FAILED}
)
# A call that ended without our stream ending it: its end reason is Twilio's status.
TWILIO_END_PREFIX = "twilio_"


def twilio_end_reason(state: str) -> str:
    """The end reason of a call whose end only Twilio reported (`twilio_completed`...)."""
    return TWILIO_END_PREFIX + state


class RecordKind(enum.StrEnum):
    """A row of a call's playout log; the label is what a reviewer reads."""

    label: str

    def __new__(cls, value: str, label: str) -> RecordKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    STREAM_STARTED = "stream_started", "Stream started"
    MODEL_SESSION_OPENED = "model_session_opened", "Model session opened"
    RESPONSE_STARTED = "response_started", "Response started"
    PLAYOUT_STARTED = "playout_started", "Playout started"
    PLAYOUT_ENDED = "playout_ended", "Playout ended"
    RESPONSE_DONE = "response_done", "Response done"
    SPEECH_STARTED = "speech_started", "Caller speech started"
    SPEECH_STOPPED = "speech_stopped", "Caller speech stopped"
    BARGE_IN = "barge_in", "Barge-in"
    USER_SPEECH_AI_SILENT = "user_speech_ai_silent", "User speech while AI silent"
    CANCELLED = "cancelled", "Response cancelled"
    TRUNCATED = "truncated", "Model memory truncated"
    TRUNCATE_REJECTED = "truncate_rejected", "Truncate rejected (retried, or item deleted)"
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
    STREAM_ENDED = "stream_ended", "Stream ended"


class EndReason(enum.StrEnum):
    """Why the bridge ended a call (`CallSession.end_reason`; Twilio's callbacks add `twilio_*`)."""

    label: str

    def __new__(cls, value: str, label: str) -> EndReason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    CALLER_HANGUP = "caller_hangup", "Caller hung up (stop)"
    CALLER_DISCONNECTED = "caller_disconnected", "Caller's stream went away without a stop"
    AGENT_HANGUP = "agent_hangup", "The AI ended the call"
    MODEL_DISCONNECTED = "model_disconnected", "The model's session closed"
    MODEL_CONNECT_FAILED = "model_connect_failed", "The model could not be reached"
    MODEL_UNRESPONSIVE = "model_unresponsive", "The model went quiet and could not be replaced"
    PROTOCOL_ERRORS = "protocol_errors", "Too many malformed Twilio messages"
    SERVER_SHUTDOWN = "server_shutdown", "The server shut down (the call is handed over)"
    SERVER_LOST = "server_lost", "The process holding the call died"
    OPERATOR_HANGUP = "operator_hangup", "An operator ended the call"
    INTERNAL_ERROR = "internal_error", "A fault in the bridge"
