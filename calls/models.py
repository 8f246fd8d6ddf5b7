"""Persistent record of calls: the session, its barge-ins, its playout timeline."""

from __future__ import annotations

from django.db import models
from django.db.models import Count, Q


class CallStatus(models.TextChoices):
    RINGING = "ringing", "Ringing"
    STREAMING = "streaming", "Streaming"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no-answer", "No answer"
    CANCELED = "canceled", "Canceled"
    FAILED = "failed", "Failed"


# Statuses Twilio reports at the end of a call; anything else is still live.
FINAL_STATUSES = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.CANCELED,
        CallStatus.FAILED,
    }
)


class EndReason(models.TextChoices):
    """Why the bridge ended a call (`CallSession.end_reason`; Twilio's callbacks add `twilio_*`)."""

    CALLER_HANGUP = "caller_hangup", "Caller hung up (stop)"
    CALLER_DISCONNECTED = "caller_disconnected", "Caller's stream went away without a stop"
    AGENT_HANGUP = "agent_hangup", "The AI ended the call"
    MODEL_DISCONNECTED = "model_disconnected", "The model's session closed"
    MODEL_CONNECT_FAILED = "model_connect_failed", "The model could not be reached"
    PROTOCOL_ERRORS = "protocol_errors", "Too many malformed Twilio messages"
    INTERNAL_ERROR = "internal_error", "A fault in the bridge"


class CallSessionQuerySet(models.QuerySet["CallSession"]):
    def with_counts(self) -> CallSessionQuerySet:
        """Annotate barge-in and "AI silent" counts in the same query."""
        return self.annotate(
            barge_in_count=Count("barge_ins", distinct=True),
            ai_silent_count=Count(
                "playout_logs",
                filter=Q(playout_logs__kind="user_speech_ai_silent"),
                distinct=True,
            ),
        )


class CallSession(models.Model):
    """One phone call, from Twilio's webhook to its end."""

    call_sid = models.CharField("call SID", max_length=64, unique=True)
    stream_sid = models.CharField("stream SID", max_length=64, blank=True)
    account_sid = models.CharField("account SID", max_length=64, blank=True)
    from_number = models.CharField(max_length=32, blank=True)
    to_number = models.CharField(max_length=32, blank=True)
    direction = models.CharField(max_length=32, blank=True)
    status = models.CharField(
        max_length=16, choices=CallStatus.choices, default=CallStatus.RINGING, db_index=True
    )
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    stream_started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)
    # Set by the media stream as the call ends, so a review needs no
    # aggregation over the playout log for the headline figures.
    responses = models.PositiveIntegerField(default=0)
    ai_audio_ms = models.PositiveIntegerField("AI audio sent (ms)", default=0)
    # The Realtime session's own id (`session.created`): what OpenAI support asks for.
    model_session_id = models.CharField("model session ID", max_length=64, blank=True)

    objects = CallSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["status", "-started_at"], name="calls_status_started_idx")]

    def __str__(self) -> str:
        return self.call_sid

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return round((self.ended_at - self.started_at).total_seconds(), 1)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class BargeInTrigger(models.TextChoices):
    SPEECH_STARTED = "speech_started", "Caller speech started"


class BargeInEvent(models.Model):
    """The caller interrupted audio they were hearing; what we did and why."""

    call = models.ForeignKey(CallSession, on_delete=models.CASCADE, related_name="barge_ins")
    occurred_at = models.DateTimeField()
    offset_ms = models.IntegerField(help_text="Milliseconds since the media stream started.")
    trigger = models.CharField(
        max_length=32, choices=BargeInTrigger.choices, default=BargeInTrigger.SPEECH_STARTED
    )
    response_id = models.CharField(max_length=64, blank=True)
    item_id = models.CharField(max_length=64, blank=True)
    playout_remaining_ms = models.IntegerField()
    audio_end_ms = models.IntegerField(
        null=True, blank=True, help_text="What the caller heard of the item (truncate point)."
    )
    reaction_ms = models.FloatField(help_text="Speech event received to Twilio clear sent.")
    pending_ms = models.IntegerField(default=0, help_text="Our queue, dropped.")
    unplayed_ms = models.IntegerField(default=0, help_text="Twilio's buffer, cleared.")
    response_cancelled = models.BooleanField(default=False)
    speech_onset_offset_ms = models.IntegerField(
        null=True, blank=True, help_text="Where the caller's speech really began."
    )
    heard_at_onset_ms = models.IntegerField(
        null=True, blank=True, help_text="What the caller had heard of the item at that onset."
    )
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["call", "offset_ms", "id"]
        indexes = [models.Index(fields=["call", "offset_ms"], name="calls_bargein_call_off_idx")]

    def __str__(self) -> str:
        return f"barge-in at {self.offset_ms} ms ({self.playout_remaining_ms} ms left)"


class PlayoutKind(models.TextChoices):
    STREAM_STARTED = "stream_started", "Stream started"
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
    END_CALL_REQUESTED = "end_call_requested", "End of call requested"
    DRAIN_STARTED = "drain_started", "Drain started"
    DRAIN_COMPLETED = "drain_completed", "Drain completed"
    HANGUP_CANCELLED = "hangup_cancelled", "Hangup cancelled"
    DTMF = "dtmf", "DTMF digit"
    MARK_STATS = "mark_stats", "Mark echo statistics"
    MODEL_ERROR = "model_error", "Model error"
    PROTOCOL_ERROR = "protocol_error", "Protocol error"
    STREAM_ENDED = "stream_ended", "Stream ended"


class PlayoutLog(models.Model):
    """One playout decision on a call's timeline, with its evidence."""

    call = models.ForeignKey(CallSession, on_delete=models.CASCADE, related_name="playout_logs")
    kind = models.CharField(max_length=32, choices=PlayoutKind.choices)
    occurred_at = models.DateTimeField()
    offset_ms = models.IntegerField(help_text="Milliseconds since the media stream started.")
    playout_status = models.CharField(max_length=48, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["call", "offset_ms", "id"]
        indexes = [
            models.Index(fields=["call", "offset_ms"], name="calls_playout_call_off_idx"),
            models.Index(fields=["kind", "call"], name="calls_playout_kind_call_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.offset_ms} ms"
