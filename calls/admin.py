"""Admin review of calls: the list, and each call's barge-ins and playout log."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from calls.models import BargeInEvent, CallSession, PlayoutLog


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class BargeInInline(ReadOnlyInline):
    model = BargeInEvent
    fields = [
        "offset_ms",
        "playout_remaining_ms",
        "audio_end_ms",
        "reaction_ms",
        "pending_ms",
        "unplayed_ms",
        "response_cancelled",
        "item_id",
    ]
    readonly_fields = fields
    ordering = ["offset_ms", "id"]


class PlayoutLogInline(ReadOnlyInline):
    model = PlayoutLog
    fields = ["offset_ms", "kind", "playout_status", "details"]
    readonly_fields = fields
    ordering = ["offset_ms", "id"]


@admin.register(CallSession)
class CallSessionAdmin(admin.ModelAdmin):
    list_display = [
        "call_sid",
        "from_number",
        "to_number",
        "status",
        "started_at",
        "duration",
        "barge_in_count",
        "ai_silent_count",
    ]
    list_filter = ["status", "started_at"]
    search_fields = ["call_sid", "from_number", "to_number"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in CallSession._meta.fields]
    inlines = [BargeInInline, PlayoutLogInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CallSession]:
        return CallSession.objects.with_counts()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="duration (s)")
    def duration(self, obj: CallSession) -> float | None:
        return obj.duration_s

    @admin.display(description="barge-ins", ordering="barge_in_count")
    def barge_in_count(self, obj: CallSession) -> int:
        return obj.barge_in_count  # type: ignore[attr-defined, no-any-return]

    @admin.display(description="AI silent", ordering="ai_silent_count")
    def ai_silent_count(self, obj: CallSession) -> int:
        return obj.ai_silent_count  # type: ignore[attr-defined, no-any-return]
