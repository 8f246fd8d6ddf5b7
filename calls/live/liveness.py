"""Which calls still have a process: marked alive by their holder, ended when it is gone.

Every process marks the calls it holds (`alive_at`) every
`CALL_ALIVE_INTERVAL_S` from its beat's thread (`calls.live.beat`), and on
the same beat ends any streaming call whose mark is older than `CALL_LOST_AFTER_S`
(its process died: SIGKILL, OOM, a lost host) as `server_lost`, with its
end time at the last sign of life. So a dead process's calls are ended by
the survivors within CALL_LOST_AFTER_S + CALL_ALIVE_INTERVAL_S (30 + 5 s by
default), with no cron to deploy. After a database outage nobody could mark
their calls, so a process reaps nothing until CALL_LOST_AFTER_S after the
database came back to it. Marks and the cutoff
use each host's clock: hosts must keep time (NTP; skew well under the 30 s).
`manage.py reap_calls` does the same once, for a deployment with no process
left running calls.

Why in the processes and not cron only: the processes already hold a database
connection on a thread of their own, the bound then follows from two settings,
and a deployment cannot forget to schedule it.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from callcore.records import CallState, EndReason, RecordKind
from calls.conf import callbridge_settings

logger = logging.getLogger(__name__)


def mark_alive(call_pks: list[int], now: datetime | None = None) -> None:
    from calls.models import CallSession

    if call_pks:
        CallSession.objects.filter(pk__in=call_pks).update(alive_at=now or timezone.now())


def reap_lost_calls(
    held: list[int], lost_after_s: float | None = None, now: datetime | None = None
) -> list[str]:
    """End streaming calls nobody has marked alive for `lost_after_s`; their SIDs."""
    from calls.models import CallSession, PlayoutLog

    now = now or timezone.now()
    lost_after = timedelta(seconds=lost_after_s or callbridge_settings().CALL_LOST_AFTER_S)
    cutoff = now - lost_after
    reaped: list[str] = []
    reaped_pks: list[int] = []
    with transaction.atomic():
        lost = (
            CallSession.objects.select_for_update(skip_locked=True)
            .filter(status=CallState.STREAMING, alive_at__lt=cutoff)
            .exclude(pk__in=held)
        )
        for call in lost:
            last_alive: datetime = call.alive_at or cutoff
            CallSession.objects.filter(pk=call.pk).update(
                status=CallState.COMPLETED, end_reason=EndReason.SERVER_LOST, ended_at=last_alive
            )
            started = call.stream_started_at or call.started_at
            PlayoutLog.objects.create(
                call=call,
                kind=RecordKind.STREAM_ENDED,
                occurred_at=now,
                offset_ms=round((now - started).total_seconds() * 1000),
                details={"end_reason": EndReason.SERVER_LOST, "reaped_by_pid": os.getpid()},
            )
            reaped.append(call.call_sid)
            reaped_pks.append(call.pk)
    if reaped_pks:
        _review_quietly(reaped_pks, now)
    if reaped:
        logger.warning(
            "%d call(s) lost their process (no sign of life for %.0f s): ended as server_lost",
            len(reaped),
            lost_after.total_seconds(),
        )
    return reaped


def _review_quietly(call_pks: list[int], now: datetime) -> None:
    """Store the reaped calls' review; a failure leaves them to a later beat's catch-up."""
    from calls.review.stored import review_calls

    try:
        review_calls(call_pks, now)
    except Exception:
        logger.warning("review of %d reaped call(s) left for later", len(call_pks), exc_info=True)
