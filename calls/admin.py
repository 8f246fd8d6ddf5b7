"""Admin review of calls: read-only records, found among 100,000 by stored columns.

The call list filters and sorts on the review stored with each call
(`calls.review.stored`); the barge-in and playout-log lists answer cross-call
questions. Records are evidence: nobody changes them here, and only a
superuser's retention action deletes them.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from callcore.records import CallState, rule_label
from callcore.records import ended_by as who_ended
from calls.conf import callbridge_settings
from calls.live.control import ask_to_end
from calls.liveview import end_live_call, live_calls, live_calls_json
from calls.models import BargeInEvent, CallSession, PlayoutLog
from calls.review.agent import (
    AgentFacts,
    Transfer,
    agent_facts,
    target_with_number,
    transfer_of,
)
from calls.review.diagnostics import CALL_FIELDS, diagnose_call_rows
from calls.review.findings import Thresholds
from calls.review.listing import (
    AgentFilter,
    BargeInsFilter,
    CallEndReasonFilter,
    CallFilter,
    CappedPaginator,
    DurationFilter,
    EndReasonFilter,
    FindingFilter,
    OnsetFilter,
    ReactionFilter,
    export_action,
    milliseconds,
    seconds,
)
from calls.review.retention import deletable, delete_calls
from calls.review.timeline import build_timeline

# The review's pages need the width: a call list at 1400 px shows every column, the
# timeline its length (the app list stays on the admin's index page).
admin.site.enable_nav_sidebar = False

# Log rows shown on a call's page; the rest are one click away in the log list.
LOG_EXCERPT_ROWS = 200


def _ms_or_dash(value: int | None) -> str:
    return "-" if value is None else f"{value / 1000:.3f} s"


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Review records: viewable with the view permission; never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_export_permission(self, request: HttpRequest) -> bool:
        """Bulk copies of callers' numbers and words: a permission of their own."""
        return bool(request.user.has_perm("calls.export_records"))


class BargeInInline(admin.TabularInline):  # type: ignore[type-arg]
    model = BargeInEvent
    extra = 0
    can_delete = False
    show_change_link = False
    fields = [
        "offset_ms",
        "speech_onset_offset_ms",
        "playout_remaining_ms",
        "audio_end_ms",
        "reaction_ms",
        "pending_ms",
        "unplayed_ms",
        "response_cancelled",
        "heard_text",
        "cut_text",
    ]
    readonly_fields = fields
    ordering = ["offset_ms", "id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EventAdmin(ReadOnlyAdmin):
    """A list of one kind of row across every call: newest first, each linking to its call."""

    list_select_related = ["call"]
    ordering = ["-occurred_at", "-id"]
    show_full_result_count = False
    paginator = CappedPaginator
    list_per_page = 100

    @admin.display(description="occurred", ordering="occurred_at")
    def occurred(self, obj: BargeInEvent | PlayoutLog) -> str:
        return seconds(obj.occurred_at)

    @admin.display(description="call")
    def call_link(self, obj: BargeInEvent | PlayoutLog) -> str:
        url = reverse("admin:calls_callsession_change", args=[obj.call_id])
        return format_html('<a href="{}">{}</a>', url, obj.call.call_sid)


@admin.register(CallSession)
class CallSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "call",
        "suspect_flags",
        "started",
        "duration",
        "end",
        "barge_in_count",
        "ai_silent_count",
        "status",
    ]
    list_filter = [
        FindingFilter,
        EndReasonFilter,
        AgentFilter,
        BargeInsFilter,
        DurationFilter,
        "status",
        ("started_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=call_sid", "^call_sid", "from_number", "to_number"]
    show_full_result_count = False
    list_per_page = 50
    inlines = [BargeInInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "call_sid",
                    "status",
                    "end_reason",
                    "ended_by",
                    "started_ms",
                    "stream_started_ms",
                    "ended_ms",
                    "duration",
                    "suspect_flags",
                ]
            },
        ),
        (
            "Agent",
            {
                "fields": [
                    "agent_shown",
                    "agent_source",
                    "agent_voice",
                    "agent_language",
                    "agent_tools",
                    "agent_transfer_targets",
                    "agent_turn_detection",
                    "agent_greeting",
                    "agent_instructions",
                ]
            },
        ),
        (
            "Conversation and link",
            {
                "fields": [
                    "responses",
                    "ai_audio_ms",
                    "barge_in_count",
                    "ai_silent_count",
                    "link_rtt_p50_ms",
                    "link_rtt_p95_ms",
                    "link_jitter_ms",
                    "link_samples",
                    "estimate_error_p95_ms",
                    "handovers",
                ]
            },
        ),
        (
            "Identifiers",
            {
                "classes": ["collapse"],
                "fields": [
                    "stream_sid",
                    "account_sid",
                    "model_session_id",
                    "from_number",
                    "to_number",
                    "direction",
                    "alive_ms",
                    "reviewed_ms",
                ],
            },
        ),
    ]
    readonly_fields = [
        *(f.name for f in CallSession._meta.fields),
        "ended_by",
        "started_ms",
        "stream_started_ms",
        "ended_ms",
        "alive_ms",
        "reviewed_ms",
        "duration",
        "suspect_flags",
        "transferred_to",
        "agent_shown",
        "agent_source",
        "agent_voice",
        "agent_language",
        "agent_tools",
        "agent_transfer_targets",
        "agent_turn_detection",
        "agent_greeting",
        "agent_instructions",
    ]
    actions = ["end_calls", "export_calls", "delete_for_retention"]

    export_calls = admin.action(description="Export selected calls as CSV", permissions=["export"])(
        export_action(
            "calls.csv",
            [
                ("call_sid", "call_sid"),
                ("started_at", "started_at"),
                ("ended_at", "ended_at"),
                ("duration_ms", "duration_ms"),
                ("status", "status"),
                ("end_reason", "end_reason"),
                ("barge_in_count", "barge_ins"),
                ("ai_silent_count", "ai_silent_speech"),
                ("suspects", "suspects"),
                ("responses", "responses"),
                ("link_rtt_p50_ms", "link_rtt_p50_ms"),
                ("link_rtt_p95_ms", "link_rtt_p95_ms"),
                ("from_number", "from"),
                ("to_number", "to"),
                ("agent_name", "agent"),
                ("transfer_target", "transfer_target"),
            ],
            {"started_at": milliseconds, "ended_at": milliseconds},
        )
    )

    @admin.action(description="End call (live calls, whichever process holds them)",
                  permissions=["end_call"])  # fmt: skip
    def end_calls(self, request: HttpRequest, queryset: QuerySet[CallSession]) -> None:
        """Ask each selected live call's process to end it (operator_hangup); audited."""
        live = list(queryset.filter(status=CallState.STREAMING))
        asked = 0
        for call in live:
            try:
                ask_to_end(call, request.user)
            except Exception as exc:  # the layer (Redis) is away: say so, end nothing
                self.message_user(
                    request, f"{call.call_sid}: could not be reached ({exc!r})", messages.ERROR
                )
                continue
            asked += 1
        skipped = len(queryset) - len(live)
        note = f"; {skipped} not live, left alone" if skipped else ""
        self.message_user(request, f"asked {asked} live call(s) to end{note}")

    @admin.action(description="Delete selected old calls and all their records (retention)",
                  permissions=["delete_for_retention"])  # fmt: skip
    def delete_for_retention(self, request: HttpRequest, queryset: QuerySet[CallSession]) -> None:
        pks = list(deletable(queryset).values_list("pk", flat=True))
        deleted = delete_calls(pks, request.user)  # type: ignore[arg-type]
        kept = queryset.count()
        days = callbridge_settings().CALL_RETENTION_MIN_DAYS
        note = f"; {kept} kept (live, or ended less than {days} days ago)" if kept else ""
        self.message_user(request, f"deleted {deleted} call(s) and their records{note}")

    def get_urls(self) -> list[URLPattern]:
        """The live view beside the call list: `admin:calls_live` and its two helpers."""
        site = self.admin_site
        return [
            path(
                "live/",
                site.admin_view(functools.partial(live_calls, admin_site=site)),
                name="calls_live",
            ),
            path("live/calls.json", site.admin_view(live_calls_json), name="calls_live_json"),
            path(
                "live/end/<str:call_sid>/",
                site.admin_view(end_live_call),
                name="calls_live_end",
            ),
            *super().get_urls(),
        ]

    def has_end_call_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("calls.end_call"))

    def has_delete_for_retention_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def get_fieldsets(self, request: HttpRequest, obj: CallSession | None = None) -> Any:
        """A transferred call says where it went, beside who ended it."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or _transfer(obj) is None:
            return fieldsets
        (name, options), *rest = fieldsets
        fields = list(options["fields"])
        fields.insert(fields.index("ended_by") + 1, "transferred_to")
        return [(name, {**options, "fields": fields}), *rest]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: CallSession | None = None,
    ) -> HttpResponse:
        """The call's timeline, findings and log excerpt above the read-only fields."""
        if obj is not None and obj.pk is not None:
            rows = list(
                obj.playout_logs.order_by("offset_ms", "id").values_list(
                    "kind", "offset_ms", "playout_status", "details"
                )
            )
            if obj.reviewed_at is not None:
                findings = [(f.offset_ms, f.rule, f.message) for f in obj.findings.all()]
            else:  # live, or recorded before the review was stored: found now
                call_rows = list(CallSession.objects.filter(pk=obj.pk).values(*CALL_FIELDS))
                found = diagnose_call_rows(call_rows, [obj.pk], Thresholds(), timezone.now())
                findings = [(f.offset_ms, f.rule, f.message) for d in found for f in d.suspects]
            context["timeline"] = build_timeline(
                rows, suspects=findings, link_rtt_ms=obj.link_rtt_p50_ms
            )
            context["log_excerpt"] = rows[:LOG_EXCERPT_ROWS]
            context["log_rows"] = len(rows)
            context["log_url"] = reverse("admin:calls_playoutlog_changelist") + f"?call={obj.pk}"
            context["transfer"] = _transfer(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="call", ordering="call_sid")
    def call(self, obj: CallSession) -> str:
        # The SID's first 14 characters tell calls apart; the whole one on hover. The agent
        # that answered goes under it: a column of its own would push the list past 1400 px.
        sid = obj.call_sid
        shown = format_html('<span class="call-sid" title="{}">{}</span>', sid, _short(sid, 16))
        if not obj.agent_name:
            return shown
        return format_html(
            '{}<br><span class="call-agent quiet" title="agent: {}">{}</span>',
            shown,
            obj.agent_name,
            _short(obj.agent_name, 18),
        )

    @admin.display(description="end reason", ordering="end_reason")
    def end(self, obj: CallSession) -> str:
        if not obj.transfer_target:
            return obj.end_reason
        name = obj.transfer_target.split(" (", 1)[0]  # a name, or "name (number)"
        return format_html(
            '{}<br><span class="call-transfer quiet" title="transferred to {}">→ {}</span>',
            obj.end_reason,
            target_with_number(obj.transfer_target, obj.agent or {}),
            _short(name, 16),
        )

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: CallSession) -> str:
        return seconds(obj.started_at)

    @admin.display(description="started")
    def started_ms(self, obj: CallSession) -> str:
        return milliseconds(obj.started_at)

    @admin.display(description="stream started")
    def stream_started_ms(self, obj: CallSession) -> str:
        return milliseconds(obj.stream_started_at)

    @admin.display(description="ended")
    def ended_ms(self, obj: CallSession) -> str:
        return milliseconds(obj.ended_at)

    @admin.display(description="last sign of life")
    def alive_ms(self, obj: CallSession) -> str:
        return milliseconds(obj.alive_at)

    @admin.display(description="reviewed")
    def reviewed_ms(self, obj: CallSession) -> str:
        return milliseconds(obj.reviewed_at)

    @admin.display(description="ended by")
    def ended_by(self, obj: CallSession) -> str:
        return who_ended(obj.end_reason) or "- (not ended)"

    @admin.display(description="transferred to")
    def transferred_to(self, obj: CallSession) -> str:
        transfer = _transfer(obj)
        target = transfer.target if transfer is not None else ""
        return format_html(
            '<strong class="transfer-target">{}</strong>', target or "- (not recorded)"
        )

    @admin.display(description="agent")
    def agent_shown(self, obj: CallSession) -> str:
        return _agent(obj).name or "- (none recorded)"

    @admin.display(description="chosen")
    def agent_source(self, obj: CallSession) -> str:
        return _agent(obj).source or "-"

    @admin.display(description="voice")
    def agent_voice(self, obj: CallSession) -> str:
        return _agent(obj).voice or "-"

    @admin.display(description="language")
    def agent_language(self, obj: CallSession) -> str:
        return _agent(obj).language or "-"

    @admin.display(description="tools")
    def agent_tools(self, obj: CallSession) -> str:
        return ", ".join(_agent(obj).tools) or "none"

    @admin.display(description="transfer targets")
    def agent_transfer_targets(self, obj: CallSession) -> str:
        targets = _agent(obj).transfer_targets
        if not targets:
            return "none"
        return format_html_join(", ", "{} ({})", targets)

    @admin.display(description="turn detection")
    def agent_turn_detection(self, obj: CallSession) -> str:
        return _agent(obj).turn_detection or "-"

    @admin.display(description="greeting")
    def agent_greeting(self, obj: CallSession) -> str:
        return _agent(obj).greeting or "- (waits for the caller)"

    @admin.display(description="instructions")
    def agent_instructions(self, obj: CallSession) -> str:
        agent = _agent(obj)
        if not agent.instructions_preview:
            return agent.instructions or "-"
        return format_html(
            '<details class="agent-instructions"><summary>{}</summary>'
            '<div style="white-space: pre-wrap">{}</div></details>',
            agent.instructions_preview,
            agent.instructions,
        )

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: CallSession) -> str:
        return _ms_or_dash(obj.duration_ms)

    @admin.display(description="findings", ordering="suspect_count")
    def suspect_flags(self, obj: CallSession) -> str:
        rules = [rule for rule in obj.suspects.split(",") if rule]
        if not rules:
            return "" if obj.reviewed_at else "not reviewed"
        return format_html(
            '<strong class="suspect-flag" style="white-space:nowrap" title="{}">'
            "&#9888; {}</strong>",
            ", ".join(rules),
            " · ".join(rule_label(rule) for rule in rules),
        )


def _short(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 2] + "…"


def _agent(call: CallSession) -> AgentFacts:
    return agent_facts(call.agent_name, call.agent or {})


def _transfer(call: CallSession) -> Transfer | None:
    return transfer_of(call.end_reason, call.transfer_target, call.agent or {})


@admin.register(BargeInEvent)
class BargeInEventAdmin(EventAdmin):
    list_display = [
        "occurred",
        "call_link",
        "offset_ms",
        "reaction_ms",
        "playout_remaining_ms",
        "dropped_ms",
        "onset_before_decision_ms",
        "response_cancelled",
        "heard",
    ]
    list_filter = [
        ReactionFilter,
        "response_cancelled",
        ("occurred_at", admin.DateFieldListFilter),
        CallEndReasonFilter,
        CallFilter,
    ]
    actions = ["export_barge_ins"]

    export_barge_ins = admin.action(
        description="Export selected barge-ins as CSV", permissions=["export"]
    )(
        export_action(
            "barge_ins.csv",
            [
                ("call__call_sid", "call_sid"),
                ("occurred_at", "occurred_at"),
                ("offset_ms", "offset_ms"),
                ("speech_onset_offset_ms", "speech_onset_offset_ms"),
                ("reaction_ms", "reaction_ms"),
                ("playout_remaining_ms", "playout_remaining_ms"),
                ("audio_end_ms", "audio_end_ms"),
                ("pending_ms", "pending_ms"),
                ("unplayed_ms", "unplayed_ms"),
                ("response_cancelled", "response_cancelled"),
                ("call__end_reason", "call_end_reason"),
                ("heard_text", "heard_text"),
                ("cut_text", "cut_text"),
            ],
            {"occurred_at": milliseconds},
        )
    )

    @admin.display(description="dropped (ms)")
    def dropped_ms(self, obj: BargeInEvent) -> int:
        return obj.pending_ms + obj.unplayed_ms

    @admin.display(description="onset before decision (ms)")
    def onset_before_decision_ms(self, obj: BargeInEvent) -> int | None:
        onset = obj.speech_onset_offset_ms
        return None if onset is None else obj.offset_ms - onset

    @admin.display(description="heard")
    def heard(self, obj: BargeInEvent) -> str:
        text = obj.heard_text
        return text if len(text) <= 60 else text[:59] + "…"


@admin.register(PlayoutLog)
class PlayoutLogAdmin(EventAdmin):
    list_display = [
        "occurred",
        "call_link",
        "kind",
        "offset_ms",
        "playout_status",
        "onset_after_end_ms",
        "details_short",
    ]
    list_filter = [
        "kind",
        OnsetFilter,
        ("occurred_at", admin.DateFieldListFilter),
        CallEndReasonFilter,
        CallFilter,
    ]
    actions = ["export_logs"]

    export_logs = admin.action(
        description="Export selected log rows as CSV", permissions=["export"]
    )(
        export_action(
            "playout_log.csv",
            [
                ("call__call_sid", "call_sid"),
                ("occurred_at", "occurred_at"),
                ("offset_ms", "offset_ms"),
                ("kind", "kind"),
                ("playout_status", "playout_status"),
                ("onset_after_end_ms", "onset_after_end_ms"),
                ("details", "details"),
            ],
            {"occurred_at": milliseconds},
        )
    )

    def get_ordering(self, request: HttpRequest) -> list[str]:
        # A call's own rows (the call page links here with ?call=) read best in its order.
        if request.GET.get("call", "").isdigit():
            return ["offset_ms", "id"]
        return list(self.ordering or [])

    @admin.display(description="details")
    def details_short(self, obj: PlayoutLog) -> str:
        details = obj.details or {}
        text = ", ".join(f"{key}={value}" for key, value in list(details.items())[:6])
        return text if len(text) <= 90 else text[:89] + "…"
