"""The review stored with each call: computed when its records are written, and by command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from callcore.records import CallState, RecordKind
from calls.live.beat import Beat
from calls.live.liveness import reap_lost_calls
from calls.live.writer import RecordWriter
from calls.models import BargeInEvent, CallFinding, CallSession, PlayoutLog
from calls.review import stored
from calls.review.retention import delete_calls
from calls.review.stored import review_calls, review_pending
from calls.views import _record_status
from tests.review.conftest import GOODBYE_SID, goodbye_call, new_call

pytestmark = pytest.mark.django_db(transaction=True)

_writers: list[RecordWriter] = []


@pytest.fixture(autouse=True)
def _writers_closed() -> Iterator[None]:
    yield
    while _writers:
        _writers.pop().close()


def writer_and_beat(review: Callable[[list[int]], object]) -> tuple[RecordWriter, Beat]:
    """A writer that tells a beat of the ends it wrote; neither runs on its own in a test:
    the test writes (`write_pending`) and beats (`review_ended`)."""
    beat = Beat(lambda: [], interval_s=3600, lost_after_s=30, review=review)
    writer = RecordWriter(interval_s=3600, after_write=beat.review_soon)
    _writers.append(writer)
    return writer, beat


def test_a_calls_counters_and_findings_are_stored() -> None:
    call = goodbye_call()

    assert (call.barge_in_count, call.ai_silent_count) == (1, 1)
    assert call.suspects == "drain_before_final_mark,missed_barge_in"
    assert call.suspect_count == 2
    assert call.duration_ms is not None
    assert call.duration_ms > 0
    assert call.reviewed_at is not None
    findings = list(call.findings.values_list("rule", "offset_ms"))
    assert sorted(rule for rule, _ in findings) == ["drain_before_final_mark", "missed_barge_in"]
    assert all(offset is not None for _, offset in findings)


def test_reviewing_again_changes_nothing() -> None:
    call = goodbye_call()
    before = list(CallFinding.objects.values_list("call_id", "rule", "offset_ms", "message"))

    review_calls([call.pk])

    after = list(CallFinding.objects.values_list("call_id", "rule", "offset_ms", "message"))
    assert after == before
    call.refresh_from_db()
    assert call.suspect_count == 2


def test_a_clean_call_has_no_findings() -> None:
    call = new_call("CA-clean").barge_in(2000, remaining_ms=3000).save()

    assert (call.suspect_count, call.suspects, call.barge_in_count) == (0, "", 1)
    assert not call.findings.exists()


def _ai_silent_before_end(call: CallSession, at: datetime) -> tuple[int, str, object]:
    return (
        call.pk,
        RecordKind.USER_SPEECH_AI_SILENT,
        at,
        5000,
        "playout_ended_150ms_ago",
        {"ms_since_playout_end": 150, "onset_ms_after_playout_end": -250},
    )


def test_the_beat_stores_the_review_once_the_writer_wrote_a_calls_end() -> None:
    call = CallSession.objects.create(call_sid="CA-written", status=CallState.STREAMING)
    writer, beat = writer_and_beat(review_calls)
    now = timezone.now()
    writer.log(_ai_silent_before_end(call, now))  # type: ignore[arg-type]
    writer.write_pending()
    beat.review_ended()
    call.refresh_from_db()
    assert call.reviewed_at is None  # still going: nothing to review yet

    writer.update_call(
        call.pk,
        {"status": "completed", "end_reason": "caller_hangup", "ended_at": now},
    )
    writer.write_pending()
    beat.review_ended()

    call.refresh_from_db()
    assert call.reviewed_at is not None
    assert (call.ai_silent_count, call.suspects) == (1, "missed_barge_in")
    log = PlayoutLog.objects.get(call=call)
    assert log.onset_after_end_ms == -250  # the column the reviewer's filter reads


def test_a_review_the_database_refuses_is_retried_at_the_next_beat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[list[int]] = []

    def flaky(pks: list[int]) -> int:
        attempts.append(pks)
        if len(attempts) == 1:
            raise OperationalError("database is locked")
        return review_calls(pks)

    call = CallSession.objects.create(call_sid="CA-flaky", status=CallState.STREAMING)
    writer, beat = writer_and_beat(flaky)
    writer.update_call(call.pk, {"end_reason": "caller_hangup", "ended_at": timezone.now()})
    writer.write_pending()
    beat.review_ended()
    call.refresh_from_db()
    assert call.reviewed_at is None
    assert "review of 1 ended call(s) not stored yet" in caplog.text

    beat.review_ended()

    call.refresh_from_db()
    assert attempts == [[call.pk], [call.pk]]
    assert call.reviewed_at is not None


def test_one_call_whose_review_fails_holds_back_no_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = CallSession.objects.create(call_sid="CA-bad", status=CallState.STREAMING)
    good = CallSession.objects.create(call_sid="CA-good", status=CallState.STREAMING)

    def picky(pks: list[int]) -> int:
        if bad.pk in pks:
            raise ValueError("a row this review cannot read")
        return review_calls(pks)

    writer, beat = writer_and_beat(picky)
    for call in (bad, good):
        writer.update_call(call.pk, {"end_reason": "caller_hangup", "ended_at": timezone.now()})
    writer.write_pending()
    beat.review_ended()

    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.reviewed_at is not None
    assert bad.reviewed_at is None  # left for review_calls, loudly
    assert f"review of call {bad.pk} failed (ValueError" in caplog.text
    beat.review_ended()  # nothing left to retry: it does not fail again and again
    assert caplog.text.count("failed (ValueError") == 1


def test_the_beat_catches_up_ended_calls_without_a_review() -> None:
    call = goodbye_call()
    CallSession.objects.filter(pk=call.pk).update(reviewed_at=None, suspect_count=0)
    live = CallSession.objects.create(call_sid="CA-live", status=CallState.STREAMING)

    assert review_pending(limit=5) == set()

    call.refresh_from_db()
    live.refresh_from_db()
    assert (call.reviewed_at is not None, call.suspect_count) == (True, 2)
    assert live.reviewed_at is None
    assert not CallSession.objects.filter(reviewed_at__isnull=True, ended_at__isnull=False)


def test_a_call_that_never_streamed_is_reviewed_by_its_status_callback() -> None:
    unanswered = CallSession.objects.create(call_sid="CA-unanswered")
    streamed = CallSession.objects.create(call_sid="CA-streamed", status=CallState.STREAMING)
    CallSession.objects.filter(pk=streamed.pk).update(stream_started_at=timezone.now())

    assert _record_status("CA-unanswered", "no-answer")
    assert _record_status("CA-streamed", "completed")

    unanswered.refresh_from_db()
    streamed.refresh_from_db()
    assert unanswered.reviewed_at is not None
    assert streamed.reviewed_at is None  # the beat reviews it once its final rows are in


def test_the_reaper_reviews_the_calls_it_ends() -> None:
    now = timezone.now()
    call = CallSession.objects.create(call_sid="CA-lost", status=CallState.STREAMING)
    CallSession.objects.filter(pk=call.pk).update(
        alive_at=now - timedelta(minutes=5), stream_started_at=now - timedelta(minutes=6)
    )

    assert reap_lost_calls(held=[], lost_after_s=30, now=now) == ["CA-lost"]

    call.refresh_from_db()
    assert call.end_reason == "server_lost"
    assert call.reviewed_at is not None
    assert call.duration_ms is not None


def test_the_command_reviews_calls_written_before_the_review_was_stored() -> None:
    call = goodbye_call()
    CallFinding.objects.all().delete()
    CallSession.objects.filter(pk=call.pk).update(
        reviewed_at=None, suspect_count=0, suspects="", barge_in_count=0
    )
    PlayoutLog.objects.filter(call=call).update(onset_after_end_ms=None)
    live = CallSession.objects.create(call_sid="CA-live", status=CallState.STREAMING)
    out = StringIO()

    call_command("review_calls", stdout=out)

    call.refresh_from_db()
    live.refresh_from_db()
    assert "1 call(s) reviewed, 1 with suspects" in out.getvalue()
    assert (call.suspect_count, call.barge_in_count) == (2, 1)
    assert live.reviewed_at is None  # a live call is reviewed when it ends


def test_retention_deletes_old_calls_with_their_records_and_audits_it() -> None:
    old = goodbye_call()
    CallSession.objects.filter(pk=old.pk).update(ended_at=timezone.now() - timedelta(days=31))
    recent = new_call("CA-recent").save()
    live = CallSession.objects.create(call_sid="CA-still-live", status=CallState.STREAMING)
    admin = User.objects.create_superuser("root", password="pw-for-tests-only")

    deleted = delete_calls([old.pk, recent.pk, live.pk], admin)

    assert deleted == 1
    assert not CallSession.objects.filter(call_sid=GOODBYE_SID).exists()
    assert CallSession.objects.filter(pk__in=[recent.pk, live.pk]).count() == 2
    assert not PlayoutLog.objects.filter(call_id=old.pk).exists()
    assert not BargeInEvent.objects.filter(call_id=old.pk).exists()
    assert not CallFinding.objects.filter(call_id=old.pk).exists()
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.object_repr) == (DELETION, GOODBYE_SID)


def test_the_catch_up_goes_past_a_call_it_cannot_review(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bad, good = goodbye_call("CA-unreadable"), goodbye_call("CA-readable")
    CallSession.objects.update(reviewed_at=None)
    real = stored.diagnose_call_rows

    def picky(rows: Any, ids: Any, *args: Any) -> Any:
        if bad.pk in list(ids):
            raise ValueError("a row this review cannot read")
        return real(rows, ids, *args)

    monkeypatch.setattr(stored, "diagnose_call_rows", picky)
    beat = Beat(lambda: [], interval_s=5, lost_after_s=30, mark=lambda held: None)

    beat.beat(0.0)
    beat.beat(5.0)  # not tried again by this process

    assert beat.unreviewable == {bad.pk}
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.reviewed_at is not None
    assert bad.reviewed_at is None
    assert caplog.text.count(f"review of call {bad.pk} failed") == 1
