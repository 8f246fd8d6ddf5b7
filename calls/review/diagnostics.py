"""Call diagnostics loading: which calls to review, and their rows in constant queries.

Loading is a constant number of queries for any list of calls (one for the
calls, one for their barge-ins, one for the playout-log kinds the findings
need); the figures and suspect rules themselves live in `calls.review.findings`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from calls.models import BargeInEvent, CallSession, PlayoutKind, PlayoutLog
from calls.review.findings import (
    BARGE_IN_FIELDS,
    CallDiagnostics,
    LogRow,
    Thresholds,
    diagnose_call,
)

DEFAULT_LAST = 20
# Above this many calls the related rows are selected with a subquery rather
# than a literal id list, which would run into SQLite's bound-parameter limit.
ID_LIST_LIMIT = 500

# The playout-log kinds the figures read; the rest of a call's log stays put.
DIAGNOSTIC_KINDS = (
    PlayoutKind.USER_SPEECH_AI_SILENT,
    PlayoutKind.DRAIN_STARTED,
    PlayoutKind.DRAIN_COMPLETED,
    PlayoutKind.HANGUP_CANCELLED,
    PlayoutKind.MARK_STATS,
)
CALL_FIELDS = (
    "id",
    "call_sid",
    "status",
    "started_at",
    "stream_started_at",
    "ended_at",
    "end_reason",
    "responses",
    "ai_audio_ms",
    "link_rtt_p50_ms",
    "link_rtt_p95_ms",
    "link_jitter_ms",
    "link_samples",
    "estimate_error_p95_ms",
)
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime) -> datetime:
    """`2h`/`30m`/`7d` before `now`, or an ISO date/datetime (naive = current time zone).

    Raises ValueError with a readable message for anything else.
    """
    text = text.strip()
    if match := _DURATION.match(text):
        return now - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    try:
        moment = parse_datetime(text)
        day = None if moment else parse_date(text)
    except ValueError:
        moment = day = None
    if moment is None and day is not None:
        moment = datetime.combine(day, time.min)
    if moment is None:
        raise ValueError(
            f"cannot read {text!r} as a date, a datetime or a duration like 2h, 30m or 7d"
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def select_calls(
    *, call_sid: str | None = None, since: datetime | None = None, last: int | None = None
) -> QuerySet[CallSession]:
    """Calls newest first: one SID; or those since a moment, capped at `last`; else the last 20."""
    calls = CallSession.objects.order_by("-started_at", "-id")
    if call_sid is not None:
        return calls.filter(call_sid=call_sid)
    if since is not None:
        calls = calls.filter(started_at__gte=since)
    if last is None and since is None:
        last = DEFAULT_LAST
    return calls[:last] if last is not None else calls


def load_diagnostics(
    calls: QuerySet[CallSession], thresholds: Thresholds, now: datetime
) -> list[CallDiagnostics]:
    """Diagnose the selected calls in three queries (one if none is selected)."""
    call_rows = list(calls.values(*CALL_FIELDS))
    if not call_rows:
        return []
    ids: Iterable[int] | QuerySet[CallSession, Any]
    ids = [row["id"] for row in call_rows]
    if len(call_rows) > ID_LIST_LIMIT:
        ids = calls.values("pk")
    return diagnose_call_rows(call_rows, ids, thresholds, now)


def diagnose_call_rows(
    call_rows: Sequence[Mapping[str, Any]],
    call_ids: Iterable[int] | QuerySet[CallSession, Any],
    thresholds: Thresholds,
    now: datetime,
) -> list[CallDiagnostics]:
    """Diagnose calls given as `CALL_FIELDS` rows, in two queries (barge-ins, playout log)."""
    barge_ins: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for barge_in in (
        BargeInEvent.objects.filter(call_id__in=call_ids)
        .order_by("call_id", "offset_ms", "id")
        .values(*BARGE_IN_FIELDS)
    ):
        barge_ins[barge_in["call_id"]].append(barge_in)
    logs: dict[int, list[LogRow]] = defaultdict(list)
    for log in (
        PlayoutLog.objects.filter(call_id__in=call_ids, kind__in=DIAGNOSTIC_KINDS)
        .order_by("call_id", "offset_ms", "id")
        .values_list("call_id", "kind", "offset_ms", "playout_status", "details")
    ):
        logs[log[0]].append(log)
    return [
        diagnose_call(row, barge_ins[row["id"]], logs[row["id"]], thresholds, now)
        for row in call_rows
    ]
