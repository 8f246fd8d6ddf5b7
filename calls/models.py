"""Persistent record of calls: the session, its barge-ins, its playout timeline."""

from __future__ import annotations

from typing import Any

from django.db import models

from callcore.records import FINAL_STATES, CallState, FindingRule, RecordKind, choices


class CallSession(models.Model):
    """One phone call, from Twilio's webhook to its end."""

    call_sid = models.CharField("call SID", max_length=64, unique=True)
    stream_sid = models.CharField("stream SID", max_length=64, blank=True)
    account_sid = models.CharField("account SID", max_length=64, blank=True)
    from_number = models.CharField(max_length=32, blank=True)
    to_number = models.CharField(max_length=32, blank=True)
    direction = models.CharField(max_length=32, blank=True)
    status = models.CharField(
        max_length=16, choices=choices(CallState), default=CallState.RINGING, db_index=True
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
    # The network between us and Twilio's player, as this call measured it (mark echoes).
    link_rtt_p50_ms = models.IntegerField("link round trip p50 (ms)", null=True, blank=True)
    link_rtt_p95_ms = models.IntegerField("link round trip p95 (ms)", null=True, blank=True)
    link_jitter_ms = models.IntegerField("link jitter (ms)", null=True, blank=True)
    link_samples = models.PositiveIntegerField(default=0)
    estimate_error_p95_ms = models.IntegerField(
        "playout estimate |error| p95 (ms)", null=True, blank=True
    )
    # The agent that answered (`calls.agents.Agent`, as the host's hook chose it at the
    # voice webhook; the default agent when it chose none, or failed).
    agent_name = models.CharField(max_length=100, blank=True)
    agent = models.JSONField(default=dict, blank=True)
    # Where a transferred call was handed (`<Dial>`): the target's name and number.
    transfer_target = models.CharField(max_length=100, blank=True)
    # Liveness: the process holding the stream says so every few seconds; a
    # streaming call whose mark is old lost its process (see calls.live.liveness).
    alive_at = models.DateTimeField(null=True, blank=True)
    # Streams the call was handed over to on a deploy (a new stream, same call).
    handovers = models.PositiveIntegerField(default=0)
    # The call's review, stored when its records are written (`calls.review.stored`;
    # `manage.py review_calls` for older rows): the list filters and sorts on these
    # columns instead of counting a log of millions of rows.
    duration_ms = models.PositiveIntegerField("duration (ms)", null=True, blank=True)
    barge_in_count = models.PositiveIntegerField("barge-ins", default=0)
    ai_silent_count = models.PositiveIntegerField("AI-silent speech", default=0)
    suspect_count = models.PositiveIntegerField("suspects", default=0)
    suspects = models.CharField(
        max_length=200, blank=True, help_text="The suspect rules found, comma separated."
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-started_at"], name="calls_status_started_idx"),
            models.Index(fields=["end_reason", "-started_at"], name="calls_endreason_started_idx"),
            models.Index(fields=["-barge_in_count", "-started_at"], name="calls_bargeins_idx"),
            models.Index(fields=["-suspect_count", "-started_at"], name="calls_suspects_idx"),
            models.Index(fields=["-duration_ms", "-started_at"], name="calls_duration_idx"),
            models.Index(fields=["reviewed_at"], name="calls_reviewed_idx"),
            models.Index(fields=["agent_name", "-started_at"], name="calls_agent_started_idx"),
        ]
        permissions = [
            ("end_call", "Can end a live call"),
            ("export_records", "Can export call records as CSV"),
        ]

    def __str__(self) -> str:
        return self.call_sid

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return round((self.ended_at - self.started_at).total_seconds(), 1)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES


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
    heard_text = models.TextField(blank=True, help_text="The answer's words the caller heard.")
    cut_text = models.TextField(blank=True, help_text="The answer's words cut off unheard.")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["call", "offset_ms", "id"]
        indexes = [
            models.Index(fields=["call", "offset_ms"], name="calls_bargein_call_off_idx"),
            # Ascending: scanned backwards they give "newest first, then highest id",
            # the admin's order, with no sort.
            models.Index(fields=["occurred_at"], name="calls_bargein_at_idx"),
            models.Index(fields=["reaction_ms"], name="calls_bargein_reaction_idx"),
        ]

    def __str__(self) -> str:
        return f"barge-in at {self.offset_ms} ms ({self.playout_remaining_ms} ms left)"


class PlayoutLog(models.Model):
    """One playout decision on a call's timeline, with its evidence."""

    call = models.ForeignKey(CallSession, on_delete=models.CASCADE, related_name="playout_logs")
    kind = models.CharField(max_length=32, choices=choices(RecordKind))
    occurred_at = models.DateTimeField()
    offset_ms = models.IntegerField(help_text="Milliseconds since the media stream started.")
    playout_status = models.CharField(max_length=48, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Caller speech judged AI silent: where it really began, relative to the end of
    # playout (negative: while the AI was still heard). A column, so the question
    # "speech that began before playout ended" is asked of an index, not of JSON.
    onset_after_end_ms = models.IntegerField("onset after playout end (ms)", null=True, blank=True)

    class Meta:
        ordering = ["call", "offset_ms", "id"]
        indexes = [
            models.Index(fields=["call", "offset_ms"], name="calls_playout_call_off_idx"),
            models.Index(fields=["kind", "call"], name="calls_playout_kind_call_idx"),
            models.Index(fields=["kind", "occurred_at"], name="calls_playout_kind_at_idx"),
            models.Index(fields=["occurred_at"], name="calls_playout_at_idx"),
            # Only AI-silent speech has an onset: an index of those rows alone.
            models.Index(
                fields=["onset_after_end_ms"],
                condition=models.Q(onset_after_end_ms__isnull=False),
                name="calls_playout_onset_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.offset_ms} ms"

    @staticmethod
    def onset_of(kind: str, details: dict[str, Any]) -> int | None:
        """The `onset_after_end_ms` column of a row of this kind with these details."""
        if kind != RecordKind.USER_SPEECH_AI_SILENT:
            return None
        onset = details.get("onset_ms_after_playout_end")
        return onset if isinstance(onset, int) else None


class CallFinding(models.Model):
    """A suspect the review found in a call: which rule, where, and why in plain words."""

    call = models.ForeignKey(CallSession, on_delete=models.CASCADE, related_name="findings")
    rule = models.CharField(max_length=32, choices=choices(FindingRule))
    offset_ms = models.IntegerField(null=True, blank=True)
    message = models.CharField(max_length=300)

    class Meta:
        ordering = ["call", "offset_ms", "id"]
        indexes = [models.Index(fields=["rule", "call"], name="calls_finding_rule_call_idx")]

    def __str__(self) -> str:
        return f"{self.rule} at {self.offset_ms} ms"
