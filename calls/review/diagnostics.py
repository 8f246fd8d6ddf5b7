"""Call diagnostics loading: which calls to review, and their rows a chunk at a time.

Calls are read newest first, `CHUNK_SIZE` at a time, so a review of 100,000
calls holds one chunk's rows in memory. Each chunk costs a constant number of
queries (one for the calls, one for their barge-ins, one for the playout-log
kinds the findings need: speech, drains, tool calls, transfers, caller sounds and the
answer's pauses); the figures and suspect rules themselves live in `calls.review.findings`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from callcore.records import RecordKind
from calls.models import BargeInEvent, CallSession, PlayoutLog
from calls.review.findings import (
    BARGE_IN_FIELDS,
    CallDiagnostics,
    LogRow,
    Thresholds,
    diagnose_call,
)

DEFAULT_LAST = 20
# The most call ids sent as one literal list: well inside SQLite's bound-parameter limit.
ID_LIST_LIMIT = 500
# Calls read per query; a chunk's ids always fit one literal id list.
CHUNK_SIZE = ID_LIST_LIMIT
# A SID prefix shorter than this names too many calls to be worth a lookup.
MIN_SID_PREFIX = 6
# How many SIDs an ambiguous prefix error lists.
AMBIGUOUS_LISTED = 10

# The playout-log kinds the figures read; the rest of a call's log stays put.
DIAGNOSTIC_KINDS = (
    RecordKind.USER_SPEECH_AI_SILENT,
    RecordKind.DRAIN_STARTED,
    RecordKind.DRAIN_COMPLETED,
    RecordKind.HANGUP_CANCELLED,
    RecordKind.MARK_STATS,
    RecordKind.TOOL_CALL,
    RecordKind.TRANSFER_REQUESTED,
    RecordKind.TURN_VERDICT,
    RecordKind.ANSWER_PAUSED,
    RecordKind.ANSWER_RESUMED,
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
    "agent_name",
    "transfer_target",
)
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

CallRow = Mapping[str, Any]
"""A call as `values(*CALL_FIELDS)` yields it."""


@dataclass(frozen=True)
class ReviewedCall:
    """One call's findings, with what the review adds to them.

    `barge_in_onsets_ms` runs parallel to `diagnostics.barge_ins`: where the
    caller's speech really began relative to the playout end estimated at the
    barge-in (negative: while the AI was still heard), None when unknown.
    """

    pk: int
    diagnostics: CallDiagnostics
    barge_in_onsets_ms: tuple[int | None, ...] = ()


def parse_since(text: str, now: datetime) -> datetime:
    """`2h`/`30m`/`7d` before `now`, or an ISO date/datetime (naive = current time zone).

    Raises ValueError with a readable message for anything else.
    """
    text = text.strip()
    if match := _DURATION.match(text):
        return now - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    moment: datetime | None
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
        aware: datetime = timezone.make_aware(moment)
        return aware
    return moment


def find_calls(prefixes: Sequence[str]) -> list[CallRow]:
    """The calls these SIDs or SID prefixes name, newest first; one query a prefix.

    A prefix must name exactly one call (a full SID always names its own).
    Raises ValueError, with the matching SIDs when ambiguous, for anything else.
    """
    found: dict[int, CallRow] = {}
    for prefix in prefixes:
        if len(prefix) < MIN_SID_PREFIX:
            raise ValueError(
                f"{prefix!r} is too short: a SID prefix needs at least {MIN_SID_PREFIX} characters"
            )
        # A full SID sorts before the longer SIDs it is a prefix of.
        rows = list(
            CallSession.objects.filter(call_sid__startswith=prefix)
            .order_by("call_sid")
            .values(*CALL_FIELDS)[: AMBIGUOUS_LISTED + 1]
        )
        exact = [row for row in rows if row["call_sid"] == prefix]
        if exact or len(rows) == 1:
            row = (exact or rows)[0]
            found[row["id"]] = row
        elif not rows:
            raise ValueError(f"no call with SID or SID prefix {prefix!r}")
        else:
            listed = ", ".join(row["call_sid"] for row in rows[:AMBIGUOUS_LISTED])
            if len(rows) > AMBIGUOUS_LISTED:
                matches = f"more than {AMBIGUOUS_LISTED} calls, the first {AMBIGUOUS_LISTED}"
            else:
                matches = f"{len(rows)} calls"
            raise ValueError(f"SID prefix {prefix!r} is ambiguous: it matches {matches}: {listed}")
    return sorted(found.values(), key=lambda row: (row["started_at"], row["id"]), reverse=True)


def call_chunks(
    *, since: datetime | None = None, last: int | None = None
) -> Iterator[list[CallRow]]:
    """Calls newest first, `CHUNK_SIZE` rows a query: those since a moment, capped at `last`;
    with neither, the last 20.

    Pages by (started_at, id) rather than by offset, so each page is an index
    range and calls that start meanwhile do not shift it.
    """
    calls = CallSession.objects.order_by("-started_at", "-id")
    if since is not None:
        calls = calls.filter(started_at__gte=since)
    remaining = DEFAULT_LAST if last is None and since is None else last
    page = calls
    while remaining is None or remaining > 0:
        size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
        rows = list(page.values(*CALL_FIELDS)[:size])
        if rows:
            yield rows
        if len(rows) < size:
            return
        if remaining is not None:
            remaining -= len(rows)
        started, pk = rows[-1]["started_at"], rows[-1]["id"]
        page = calls.filter(started_at__lte=started).filter(
            Q(started_at__lt=started) | Q(id__lt=pk)
        )


def reviewed_calls(
    chunks: Iterable[Sequence[CallRow]], thresholds: Thresholds, now: datetime
) -> Iterator[ReviewedCall]:
    """Each chunk's calls reviewed as the chunk arrives: two queries per chunk."""
    for rows in chunks:
        yield from load_diagnostics(rows, thresholds, now)


def load_diagnostics(
    call_rows: Sequence[CallRow], thresholds: Thresholds, now: datetime
) -> list[ReviewedCall]:
    """Review calls given as `CALL_FIELDS` rows, two queries per `ID_LIST_LIMIT` calls."""
    reviewed: list[ReviewedCall] = []
    for first in range(0, len(call_rows), ID_LIST_LIMIT):
        rows = call_rows[first : first + ID_LIST_LIMIT]
        barge_ins, logs = _related_rows([row["id"] for row in rows], ["speech_onset_offset_ms"])
        reviewed += [
            ReviewedCall(
                pk=row["id"],
                diagnostics=diagnose_call(
                    row, barge_ins[row["id"]], logs[row["id"]], thresholds, now
                ),
                barge_in_onsets_ms=tuple(_onset_after_playout_end(b) for b in barge_ins[row["id"]]),
            )
            for row in rows
        ]
    return reviewed


def diagnose_call_rows(
    call_rows: Sequence[CallRow],
    call_ids: Iterable[int] | QuerySet[CallSession, Any],
    thresholds: Thresholds,
    now: datetime,
) -> list[CallDiagnostics]:
    """Diagnose calls given as `CALL_FIELDS` rows, in two queries (barge-ins, playout log)."""
    barge_ins, logs = _related_rows(call_ids)
    return [
        diagnose_call(row, barge_ins[row["id"]], logs[row["id"]], thresholds, now)
        for row in call_rows
    ]


def _related_rows(
    call_ids: Iterable[int] | QuerySet[CallSession, Any], extra_barge_in_fields: Sequence[str] = ()
) -> tuple[dict[int, list[Mapping[str, Any]]], dict[int, list[LogRow]]]:
    """The calls' barge-in rows and diagnostic playout-log rows, by call id, in offset order."""
    barge_ins: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for barge_in in (
        BargeInEvent.objects.filter(call_id__in=call_ids)
        .order_by("call_id", "offset_ms", "id")
        .values(*BARGE_IN_FIELDS, *extra_barge_in_fields)
    ):
        barge_ins[barge_in["call_id"]].append(barge_in)
    logs: dict[int, list[LogRow]] = defaultdict(list)
    for log in (
        PlayoutLog.objects.filter(call_id__in=call_ids, kind__in=DIAGNOSTIC_KINDS)
        .order_by("call_id", "offset_ms", "id")
        .values_list("call_id", "kind", "offset_ms", "playout_status", "details")
    ):
        logs[log[0]].append(log)
    return barge_ins, logs


def _onset_after_playout_end(barge_in: Mapping[str, Any]) -> int | None:
    # The barge-in saw `playout_remaining_ms` left at its offset: that is where
    # the playout would have ended had the caller not spoken.
    onset = barge_in["speech_onset_offset_ms"]
    if onset is None:
        return None
    return int(onset - (barge_in["offset_ms"] + barge_in["playout_remaining_ms"]))
