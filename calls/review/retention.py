"""Retention: the one way review records leave the database, in batches, audited.

Everything else in the admin is read-only. Live calls, and calls that ended
less than `CALL_RETENTION_MIN_DAYS` ago, are never deleted.
Each batch is its own transaction, so deleting a year of calls neither holds
one long lock nor builds one huge cascade in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from calls.conf import callbridge_settings
from calls.models import BargeInEvent, CallFinding, CallSession, PlayoutLog

# Calls a transaction: a long call has thousands of log rows; a batch stays well
# within the database's statement timeout.
BATCH = 50


def deletable(calls: QuerySet[CallSession]) -> QuerySet[CallSession]:
    """The calls that may go: those that ended `CALL_RETENTION_MIN_DAYS` ago or more."""
    oldest_kept = timezone.now() - timedelta(days=callbridge_settings().CALL_RETENTION_MIN_DAYS)
    return calls.filter(ended_at__lte=oldest_kept)


def delete_calls(call_pks: Sequence[int], user: AbstractBaseUser | None = None) -> int:
    """Delete these calls and every record of them, `BATCH` calls a transaction.

    With a `user`, each deleted call is audited as an admin deletion.
    """
    deleted = 0
    for start in range(0, len(call_pks), BATCH):
        batch = list(call_pks[start : start + BATCH])
        with transaction.atomic():
            calls = list(deletable(CallSession.objects.filter(pk__in=batch)))
            if user is not None and calls:
                LogEntry.objects.log_actions(
                    user.pk,
                    calls,
                    DELETION,
                    change_message="Deleted for retention, with its records",
                )
            ids = [call.pk for call in calls]
            # The children first, by call: plain DELETEs on indexed columns, no
            # collector loading millions of log rows to cascade them one by one.
            PlayoutLog.objects.filter(call_id__in=ids).delete()
            BargeInEvent.objects.filter(call_id__in=ids).delete()
            CallFinding.objects.filter(call_id__in=ids).delete()
            deleted += CallSession.objects.filter(pk__in=ids).delete()[0]
    return deleted
