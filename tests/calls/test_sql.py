"""Rows written with one prepared statement read back through the ORM as if it wrote them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import transaction

from calls.live.writer import LOG_FIELDS
from calls.models import CallSession, PlayoutLog
from calls.sql import insert_rows, update_rows

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 5, 9, 30, 15, 123456, tzinfo=UTC)
# The same instant as written by a host two hours east: stored, and read back, as UTC.
AT_EAST = AT.astimezone(timezone(timedelta(hours=2)))


def test_inserted_rows_read_back_with_their_json_times_and_call() -> None:
    call = CallSession.objects.create(call_sid="CA" + "1" * 32)
    details: dict[str, Any] = {"reaction_ms": 4, "heard_text": "ça va", "nested": {"a": [1, None]}}
    insert_rows(
        PlayoutLog,
        LOG_FIELDS,  # the record writer's rows
        [
            (call.pk, "barge_in", AT_EAST, 4200, "speaking", details, -350),
            (call.pk, "truncated", AT + timedelta(milliseconds=5), 4205, "", {}, None),
        ],
    )

    rows = list(
        PlayoutLog.objects.filter(call=call)
        .order_by("offset_ms")
        .values_list("kind", "occurred_at", "offset_ms", "details", "onset_after_end_ms")
    )
    assert rows == [
        ("barge_in", AT, 4200, details, -350),
        ("truncated", AT + timedelta(milliseconds=5), 4205, {}, None),
    ]
    # The filters the review and the admin use find them, by instant and by JSON key.
    assert PlayoutLog.objects.filter(details__reaction_ms=4, occurred_at__gte=AT).count() == 1
    assert PlayoutLog.objects.filter(occurred_at__lt=AT + timedelta(microseconds=1)).count() == 1


def test_updates_reach_only_the_rows_they_name() -> None:
    first, second, third = (
        CallSession.objects.create(call_sid=f"CA{digit * 32}", end_reason="streaming")
        for digit in "234"
    )
    with transaction.atomic():
        update_rows(
            CallSession,
            ("ended_at", "end_reason", "duration_ms"),
            [(first.pk, (AT_EAST, "caller_hangup", 8000)), (third.pk, (None, "", 0))],
        )

    fields = ("ended_at", "end_reason", "duration_ms")
    assert CallSession.objects.values_list(*fields).get(pk=first.pk) == (AT, "caller_hangup", 8000)
    assert CallSession.objects.values_list(*fields).get(pk=second.pk) == (None, "streaming", None)
    assert CallSession.objects.values_list(*fields).get(pk=third.pk) == (None, "", 0)


def test_nothing_to_write_runs_no_statement(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        insert_rows(PlayoutLog, ("call", "kind"), [])
        update_rows(CallSession, ("status",), [])
        update_rows(CallSession, (), [(1, ())])  # nothing to set
