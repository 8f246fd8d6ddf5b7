"""Retention: the one way review records leave the database, in batches, audited.

Everything else in the admin is read-only. Live calls are never deleted.
Each batch is its own transaction, so deleting a year of calls neither holds
one long lock nor builds one huge cascade in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet

from calls.models import BargeInEvent, CallFinding, CallSession, PlayoutLog

BATCH = 200


def deletable(calls: QuerySet[CallSession]) -> QuerySet[CallSession]:
    """The calls that may go: ended ones only."""
    return calls.filter(ended_at__isnull=False)


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
