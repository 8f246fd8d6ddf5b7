"""A call's review, stored on its row: counters and findings, written when its records are.

The call list of 100,000 calls filters and sorts on these columns; nothing is
counted over the playout log or diagnosed per page. `review_calls` recomputes
everything from the call's own rows, so running it again changes nothing: the
process's beat runs it when a call's final records are in, the reaper for the
calls it ends, the status callback when Twilio reports a final status, and
`manage.py review_calls` for rows written before the review was stored.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from callcore.records import RecordKind
from calls.models import CallFinding, CallSession, PlayoutLog
from calls.review.diagnostics import CALL_FIELDS, diagnose_call_rows
from calls.review.findings import CallDiagnostics, Thresholds
from calls.sql import update_rows

logger = logging.getLogger(__name__)

# Calls reviewed per transaction (a bounded IN list on every database).
CHUNK = 500
REVIEW_FIELDS = (
    "duration_ms",
    "barge_in_count",
    "ai_silent_count",
    "suspect_count",
    "suspects",
    "reviewed_at",
)


def review_calls(call_pks: Sequence[int], now: datetime | None = None) -> int:
    """Recompute and store the review of these calls (any number); how many were found."""
    now = now or timezone.now()
    done = 0
    for start in range(0, len(call_pks), CHUNK):
        done += _review_chunk(list(call_pks[start : start + CHUNK]), now)
    return done


def review_pending(limit: int, skip: Collection[int] = (), now: datetime | None = None) -> set[int]:
    """Review up to `limit` ended calls that have no stored review yet (oldest first),
    but those in `skip`; the calls whose review failed (not for the database's sake).

    The process's beat runs this: calls whose review a process could not store
    (it stopped, the database was away) and calls recorded before the review
    was stored are caught up a few at a time, off every call's audio path. One
    call's rows the review cannot read hold back no other; the beat skips that
    call from then on (`manage.py review_calls` tries it again).
    """
    pks = list(
        CallSession.objects.filter(reviewed_at__isnull=True, ended_at__isnull=False)
        .exclude(pk__in=list(skip))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not pks:
        return set()
    try:
        review_calls(pks, now)
    except (OperationalError, InterfaceError):
        raise  # the database is away: the whole catch-up waits for it
    except Exception:
        return _one_by_one(pks, now)
    return set()


def _one_by_one(call_pks: list[int], now: datetime | None) -> set[int]:
    failed: set[int] = set()
    for pk in call_pks:
        try:
            review_calls([pk], now)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            failed.add(pk)
            logger.exception("review of call %d failed: left unreviewed", pk)
    return failed


def _review_chunk(call_pks: list[int], now: datetime) -> int:
    rows = list(CallSession.objects.filter(pk__in=call_pks).values(*CALL_FIELDS))
    if not rows:
        return 0
    ids = [row["id"] for row in rows]
    diagnosed = diagnose_call_rows(rows, ids, Thresholds(), now)
    reviews = [
        (row["id"], _review_values(diag, now)) for row, diag in zip(rows, diagnosed, strict=True)
    ]
    findings = [
        CallFinding(
            call_id=row["id"],
            rule=suspect.rule,
            offset_ms=suspect.offset_ms,
            message=suspect.message[:300],
        )
        for row, diag in zip(rows, diagnosed, strict=True)
        for suspect in diag.suspects
    ]
    with transaction.atomic():
        CallFinding.objects.filter(call_id__in=ids).delete()
        CallFinding.objects.bulk_create(findings)
        update_rows(CallSession, REVIEW_FIELDS, reviews)
        _backfill_onsets(ids)
    return len(rows)


def _review_values(diag: CallDiagnostics, now: datetime) -> tuple[object, ...]:
    """The call's `REVIEW_FIELDS`, in that order."""
    started, ended = diag.started_at, diag.ended_at
    rules = sorted({suspect.rule for suspect in diag.suspects})
    return (
        # Never negative, even if the end was written by a host whose clock is behind.
        max(0, round((ended - started).total_seconds() * 1000)) if ended else None,
        len(diag.barge_ins),
        len(diag.silent_speech),
        len(diag.suspects),
        ",".join(rules)[:200],
        now,
    )


def _backfill_onsets(call_pks: list[int]) -> None:
    """AI-silent speech rows written before the onset had a column of its own."""
    missing = (
        PlayoutLog.objects.filter(
            call_id__in=call_pks,
            kind=RecordKind.USER_SPEECH_AI_SILENT,
            onset_after_end_ms__isnull=True,
        )
        .order_by()
        .only("pk", "details")
    )
    found: list[PlayoutLog] = []
    for log in missing:
        log.onset_after_end_ms = PlayoutLog.onset_of(log.kind, log.details)
        if log.onset_after_end_ms is not None:
            found.append(log)
    if found:
        PlayoutLog.objects.bulk_update(found, ["onset_after_end_ms"])
