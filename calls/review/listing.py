"""The admin lists' tools at 100,000 calls: filters on stored columns, a capped count, CSV.

Every filter here is a condition on an indexed column (or a subquery over
one); none aggregates over the playout log. Lookup choices are fixed lists,
never a DISTINCT over the table.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from callcore.records import (
    FINAL_STATES,
    CallState,
    EndReason,
    FindingRule,
    choices,
    twilio_end_reason,
)
from calls.models import CallFinding, CallSession
from calls.review.findings import Thresholds

# Twilio's own end reasons (its final statuses, as the status callback records them).
TWILIO_END_REASONS = tuple(
    (twilio_end_reason(state), f"Twilio: {state.label.lower()}")
    for state in CallState
    if state in FINAL_STATES
)
END_REASONS = tuple((reason.value, reason.label) for reason in EndReason) + TWILIO_END_REASONS
# Rows an export reads at a time.
EXPORT_CHUNK = 2000
# Calls, newest first, whose agents the agent filter offers.
AGENT_SAMPLE = 500


def seconds(moment: datetime | None) -> str:
    """A moment to the second in the current time zone (lists)."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def milliseconds(moment: datetime | None) -> str:
    """A moment to the millisecond in the current time zone (a call's page, exports)."""
    if moment is None:
        return "-"
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


class _Choices(admin.SimpleListFilter):
    """A filter over a fixed list of choices (no query to build it)."""

    options: Sequence[tuple[str, str]] = ()

    def lookups(self, request: HttpRequest, model_admin: Any) -> Sequence[tuple[str, str]]:
        return self.options


class FindingFilter(_Choices):
    title = "finding"
    parameter_name = "finding"
    options = [
        *choices(FindingRule),
        ("any", "any finding"),
        ("none", "no finding"),
        ("not_reviewed", "not reviewed yet"),
    ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "any":
            return queryset.filter(suspect_count__gt=0)
        if value == "none":
            return queryset.filter(reviewed_at__isnull=False, suspect_count=0)
        if value == "not_reviewed":
            return queryset.filter(reviewed_at__isnull=True)
        if value in set(FindingRule):
            flagged = Q(pk__in=CallFinding.objects.filter(rule=value).values("call_id"))
            if value == FindingRule.MISSING_ENDED_AT:
                # A call still "streaming" long after it began is never reviewed (it has
                # not ended): the stale-streaming rule, asked of the columns directly.
                stale = timezone.now() - Thresholds().stale_streaming
                flagged |= Q(status=CallState.STREAMING, started_at__lt=stale)
            return queryset.filter(flagged)
        return queryset


class EndReasonFilter(_Choices):
    title = "end reason"
    parameter_name = "end_reason"
    options = END_REASONS

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(end_reason=self.value()) if self.value() else queryset


class CallEndReasonFilter(EndReasonFilter):
    """The end reason of the event's call."""

    title = "call's end reason"
    parameter_name = "call_end_reason"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Few such calls: their rows by call, then sorted. Many: the newest rows first,
        each checked against its call (dense enough that a page comes quickly)."""
        value = self.value()
        if not value:
            return queryset
        calls = CallSession.objects.filter(end_reason=value)
        few = list(calls.order_by().values_list("pk", flat=True)[:SPARSE])
        if len(few) < SPARSE:
            return queryset.filter(call_id__in=few)
        return queryset.filter(Exists(calls.filter(pk=OuterRef("call_id"))))


class AgentFilter(admin.SimpleListFilter):
    """The agent that answered. Its choices are the names of the latest `AGENT_SAMPLE`
    calls (a host's hook names agents, so there is no fixed list; a DISTINCT over
    100,000 calls is the scan this module avoids), and the one chosen."""

    title = "agent"
    parameter_name = "agent"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Sequence[tuple[str, str]]:
        recent = CallSession.objects.order_by("-started_at").values_list("agent_name", flat=True)
        names = {name for name in recent[:AGENT_SAMPLE] if name}
        if chosen := self.value():
            names.add(chosen)
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(agent_name=self.value()) if self.value() else queryset


class BargeInsFilter(_Choices):
    title = "barge-ins"
    parameter_name = "barge_ins"
    options = (("yes", "with barge-ins"), ("no", "without"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(barge_in_count__gt=0)
        if self.value() == "no":
            return queryset.filter(barge_in_count=0)
        return queryset


class _Ranges(_Choices):
    """Choices that are ranges: (value, label, lookups), each looked up with `narrowed`."""

    ranges: Sequence[tuple[str, str, dict[str, float]]] = ()

    def lookups(self, request: HttpRequest, model_admin: Any) -> Sequence[tuple[str, str]]:
        return [(value, label) for value, label, _ in self.ranges]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        for value, _, lookups in self.ranges:
            if value == self.value():
                return narrowed(queryset, lookups)
        return queryset


# Below this many matching rows, a range is looked up through its own index first.
SPARSE = 900  # an IN list every SQLite build accepts (999 bound parameters)


def narrowed(queryset: QuerySet[Any], lookups: dict[str, Any]) -> QuerySet[Any]:
    """`queryset.filter(**lookups)`, fast whether the range is rare or common.

    The list is sorted newest first, and a database walking its date index
    to find the few rows in a rare range (three missed barge-ins among ten
    million log rows) reads them all. So the range's own index is asked
    first, for at most `SPARSE` ids: fewer, and the page is those rows,
    sorted; as many, and the rows are dense enough for the ordered walk.
    """
    ids = list(
        queryset.model.objects.filter(**lookups).order_by().values_list("pk", flat=True)[:SPARSE]
    )
    if len(ids) < SPARSE:
        return queryset.filter(pk__in=ids)
    return queryset.filter(**lookups)


class DurationFilter(_Ranges):
    title = "duration"
    parameter_name = "duration"
    ranges = (
        ("short", "under 30 s", {"duration_ms__lt": 30_000}),
        ("medium", "30 s to 2 min", {"duration_ms__gte": 30_000, "duration_ms__lt": 120_000}),
        ("long", "2 to 10 min", {"duration_ms__gte": 120_000, "duration_ms__lt": 600_000}),
        ("very_long", "10 min or more", {"duration_ms__gte": 600_000}),
    )


class ReactionFilter(_Ranges):
    title = "reaction"
    parameter_name = "reaction"
    ranges = (
        ("over_10", "over 10 ms", {"reaction_ms__gt": 10}),
        ("over_50", "over 50 ms", {"reaction_ms__gt": 50}),
        ("over_100", "over 100 ms", {"reaction_ms__gt": 100}),
    )


class OnsetFilter(_Ranges):
    """Where AI-silent speech really began, relative to the end of playout."""

    title = "speech onset vs playout end"
    parameter_name = "onset"
    ranges = (
        ("before_end", "began before playout ended", {"onset_after_end_ms__lt": 0}),
        ("within_500", "within 500 ms after",
         {"onset_after_end_ms__gte": 0, "onset_after_end_ms__lt": 500}),
        ("later", "500 ms or more after", {"onset_after_end_ms__gte": 500}),
    )  # fmt: skip


class CallFilter(admin.SimpleListFilter):
    """`?call=<pk>`: one call's rows (the call page links here); no choices shown."""

    title = "call"
    parameter_name = "call"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Sequence[tuple[str, str]]:
        return [(self.value(), f"call {self.value()}")] if self.value() else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(call_id=int(value))
        return queryset


class CappedPaginator(Paginator):
    """Counts at most `CAP` rows: the exact size of ten million log rows costs a full scan.

    The list says "10000" for anything larger, and its last pages are the
    first ones in the other sort order.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            return int(self.object_list[: self.CAP].count())
        return min(len(self.object_list), self.CAP)


class _Echo:
    """A file-like object whose write returns the line (csv.writer into a stream)."""

    def write(self, value: str) -> str:
        return value


def csv_response(
    filename: str, header: Sequence[str], rows: AsyncIterator[Sequence[Any]]
) -> StreamingHttpResponse:
    """Stream rows as CSV: a selection of 100,000 rows never sits in memory.

    The rows are an asynchronous iterator, so Uvicorn streams them as they are
    read; a synchronous one would be read whole before the first byte went out.
    """
    writer = csv.writer(_Echo())

    async def lines() -> AsyncIterator[str]:
        yield writer.writerow(header)
        async for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_action(
    filename: str, columns: Sequence[tuple[str, str]], convert: dict[str, Callable[[Any], Any]]
) -> Callable[[Any, HttpRequest, QuerySet[Any]], StreamingHttpResponse]:
    """An admin action exporting the selection: `columns` are (field path, header)."""
    fields = [field for field, _ in columns]
    converters = [convert.get(field, _plain) for field in fields]

    def export(
        model_admin: Any, request: HttpRequest, queryset: QuerySet[Model]
    ) -> StreamingHttpResponse:
        values = queryset.order_by("pk").values_list("pk", *fields)

        async def rows() -> AsyncIterator[list[Any]]:
            # Pages of 2,000 by primary key, each read on a thread (the ORM is sync).
            last = None
            while True:
                page = values if last is None else values.filter(pk__gt=last)
                chunk = await sync_to_async(list)(page[:EXPORT_CHUNK])
                for _, *row in chunk:
                    yield [c(v) for c, v in zip(converters, row, strict=True)]
                if len(chunk) < EXPORT_CHUNK:
                    return
                last = chunk[-1][0]

        return csv_response(filename, [header for _, header in columns], rows())

    export.__name__ = "export_csv"
    return export


def _plain(value: Any) -> Any:
    """A cell: text a spreadsheet would run as a formula (a caller's words can start with
    `=`) is quoted; structured details are JSON."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
