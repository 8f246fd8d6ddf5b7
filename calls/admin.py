"""Admin review of calls: the list, and each call's barge-ins and playout log."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html

from calls.live.control import request_end
from calls.models import BargeInEvent, CallSession, CallStatus, PlayoutLog
from calls.review.diagnostics import CALL_FIELDS, diagnose_call_rows
from calls.review.findings import (
    DRAIN_BEFORE_FINAL_MARK,
    MISSED_BARGE_IN,
    MISSING_ENDED_AT,
    SLOW_LINK,
    SLOW_REACTION,
    CallDiagnostics,
    Thresholds,
)
from calls.review.timeline import build_timeline

# Short enough for a list column; the full rule names are in the tooltip.
SUSPECT_LABELS = {
    MISSED_BARGE_IN: "missed barge-in",
    DRAIN_BEFORE_FINAL_MARK: "drain cut",
    SLOW_REACTION: "slow reaction",
    MISSING_ENDED_AT: "no ended_at",
    SLOW_LINK: "slow link",
}


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
        "heard_text",
        "cut_text",
        "item_id",
    ]
    readonly_fields = fields
    ordering = ["offset_ms", "id"]


class PlayoutLogInline(ReadOnlyInline):
    model = PlayoutLog
    fields = ["offset_ms", "kind", "playout_status", "details"]
    readonly_fields = fields
    ordering = ["offset_ms", "id"]


def _diagnose(calls: list[CallSession]) -> list[CallDiagnostics]:
    """Findings for these calls in two queries, whatever their number."""
    rows = [{name: getattr(call, name) for name in CALL_FIELDS} for call in calls]
    return diagnose_call_rows(rows, [call.pk for call in calls], Thresholds(), timezone.now())


class ReviewChangeList(ChangeList):
    """The call list; each page's suspects are found for the whole page at once."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Evaluates the page's queryset once; the template reuses these instances.
        calls = list(self.result_list)
        if calls:
            for call, found in zip(calls, _diagnose(calls), strict=True):
                call.suspect_rules = sorted({suspect.rule for suspect in found.suspects})


@admin.register(CallSession)
class CallSessionAdmin(admin.ModelAdmin):
    list_display = [
        "call_sid",
        "suspects",
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
    actions = ["end_calls"]

    @admin.action(description="End call (live calls, whichever process holds them)",
                  permissions=["end_call"])  # fmt: skip
    def end_calls(self, request: HttpRequest, queryset: QuerySet[CallSession]) -> None:
        """Ask each selected live call's process to end it (operator_hangup); audited."""
        live = list(queryset.filter(status=CallStatus.STREAMING))
        by = f"admin ({request.user.get_username()})"
        asked = 0
        for call in live:
            try:
                async_to_sync(request_end)(call.call_sid, by)
            except Exception as exc:  # the layer (Redis) is away: say so, end nothing
                self.message_user(
                    request, f"{call.call_sid}: could not be reached ({exc!r})", messages.ERROR
                )
                continue
            asked += 1
            LogEntry.objects.log_actions(
                request.user.pk,
                [call],
                CHANGE,
                change_message="Asked to end the live call (operator_hangup)",
                single_object=True,
            )
        skipped = len(queryset) - len(live)
        note = f"; {skipped} not live, left alone" if skipped else ""
        self.message_user(request, f"asked {asked} live call(s) to end{note}")

    def has_end_call_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("calls.end_call"))

    def get_queryset(self, request: HttpRequest) -> QuerySet[CallSession]:
        return CallSession.objects.with_counts()

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ReviewChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: CallSession | None = None,
    ) -> HttpResponse:
        """Add the call's timeline picture and findings above the fields."""
        if obj is not None and obj.pk is not None:
            rows = obj.playout_logs.order_by("offset_ms", "id").values_list(
                "kind", "offset_ms", "playout_status", "details"
            )
            context["timeline"] = build_timeline(list(rows))
            context["findings"] = _diagnose([obj])[0]
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="duration (s)")
    def duration(self, obj: CallSession) -> float | None:
        return obj.duration_s

    @admin.display(description="barge-ins", ordering="barge_in_count")
    def barge_in_count(self, obj: CallSession) -> int:
        return obj.barge_in_count  # type: ignore[attr-defined, no-any-return]

    @admin.display(description="AI silent", ordering="ai_silent_count")
    def ai_silent_count(self, obj: CallSession) -> int:
        return obj.ai_silent_count  # type: ignore[attr-defined, no-any-return]

    @admin.display(description="suspects")
    def suspects(self, obj: CallSession) -> str:
        rules: list[str] | None = getattr(obj, "suspect_rules", None)
        if not rules:
            return ""
        return format_html(
            '<strong class="suspect-flag" style="white-space:nowrap" title="{}">'
            "&#9888; {}</strong>",
            ", ".join(rules),
            " · ".join(SUSPECT_LABELS.get(rule, rule) for rule in rules),
        )
