"""The review lists: filters and sorts on stored columns, read-only records, exports, retention."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from callcore.records import CallState, RecordKind
from calls.admin import CallSessionAdmin
from calls.models import CallSession
from calls.review.listing import CappedPaginator
from tests.review.conftest import GOODBYE_SID, goodbye_call, new_call

pytestmark = pytest.mark.django_db

CALLS = "/admin/calls/callsession/"
BARGE_INS = "/admin/calls/bargeinevent/"
LOGS = "/admin/calls/playoutlog/"


def sids(response: Any) -> list[str]:
    return [row.call_sid for row in response.context["cl"].result_list]


@pytest.fixture
def calls() -> dict[str, CallSession]:
    """A flagged call, a clean call with two barge-ins, a quiet call, a live call."""
    flagged = goodbye_call()
    busy = (
        new_call("CA-busy")
        .barge_in(2000, remaining_ms=3000)
        .barge_in(8000, remaining_ms=2500, reaction_ms=75.0)
        .save()
    )
    quiet = new_call("CA-quiet").ai_silent(3000, ms_since_end=2000).save()
    live = new_call("CA-live", status=CallState.STREAMING, ended=False).save()
    CallSession.objects.filter(pk=quiet.pk).update(end_reason="agent_hangup")
    return {"flagged": flagged, "busy": busy, "quiet": quiet, "live": live}


def test_a_finding_filter_finds_the_flagged_call(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    missed = staff_client.get(CALLS, {"finding": "missed_barge_in"})
    slow = staff_client.get(CALLS, {"finding": "slow_reaction"})
    flagged = staff_client.get(CALLS, {"finding": "any"})

    assert sids(missed) == [GOODBYE_SID]
    assert sids(slow) == ["CA-busy"]
    assert set(sids(flagged)) == {GOODBYE_SID, "CA-busy"}


def test_filters_on_end_reason_barge_ins_and_duration(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    by_agent = staff_client.get(CALLS, {"end_reason": "agent_hangup"})
    with_barge_ins = staff_client.get(CALLS, {"barge_ins": "yes"})
    short = staff_client.get(CALLS, {"duration": "short"})

    assert sids(by_agent) == ["CA-quiet"]
    assert set(sids(with_barge_ins)) == {GOODBYE_SID, "CA-busy"}
    assert set(sids(short)) == {GOODBYE_SID, "CA-busy", "CA-quiet"}  # 20 s each; live: none


def test_the_list_sorts_by_barge_ins(staff_client: Client, calls: dict[str, CallSession]) -> None:
    column = CallSessionAdmin.list_display.index("barge_in_count") + 1

    response = staff_client.get(CALLS, {"o": f"-{column}"})

    assert sids(response)[:2] == ["CA-busy", GOODBYE_SID]


def test_list_queries_do_not_depend_on_the_log(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    staff_client.get(CALLS)
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(CALLS, {"finding": "missed_barge_in"})

    sql = " ".join(query["sql"] for query in queries)
    assert "calls_playoutlog" not in sql  # nothing counted over the log
    assert len(queries) <= 6  # session, user, the page, its count, the filter's subquery


def test_a_call_is_read_only(staff_client: Client, calls: dict[str, CallSession]) -> None:
    pk = calls["flagged"].pk

    page = staff_client.get(f"{CALLS}{pk}/change/")
    post = staff_client.post(f"{CALLS}{pk}/change/", {"call_sid": "CA-forged"})
    delete = staff_client.get(f"{CALLS}{pk}/delete/")

    body = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in body
    assert "deletelink" not in body
    assert "Change call session" not in body
    assert post.status_code == 403
    assert delete.status_code == 403
    assert CallSession.objects.get(pk=pk).call_sid == GOODBYE_SID


def test_the_call_page_shows_times_to_the_millisecond_and_who_ended_it(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    call = calls["quiet"]

    body = staff_client.get(f"{CALLS}{call.pk}/change/").content.decode()

    at = call.started_at
    started = at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d}"
    assert started in body
    assert "the AI said goodbye" in body
    assert "20.000 s" in body


def test_a_reviewer_with_only_the_view_permission_sees_calls_without_deletion(
    client: Client, calls: dict[str, CallSession]
) -> None:
    user = User.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_callsession", "view_playoutlog"])
    )
    client.force_login(user)

    response = client.get(CALLS)

    assert response.status_code == 200
    assert CALLS in response.content.decode()
    # No delete, no retention, and no export (bulk copies need calls.export_records).
    assert response.context["action_form"] is None

    user.user_permissions.add(Permission.objects.get(codename="export_records"))
    client.force_login(User.objects.get(pk=user.pk))
    actions = dict(client.get(CALLS).context["action_form"].fields["action"].choices)
    assert set(actions) - {""} == {"export_calls"}


def test_a_staff_member_cannot_forge_a_retention_action(
    client: Client, calls: dict[str, CallSession]
) -> None:
    user = User.objects.create_user("staffer", password="pw-for-tests-only", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="calls"))
    client.force_login(user)
    old = calls["flagged"]
    CallSession.objects.filter(pk=old.pk).update(ended_at=timezone.now() - timedelta(days=90))

    client.post(CALLS, {"action": "delete_for_retention", "_selected_action": [old.pk], "index": 0})

    assert CallSession.objects.filter(pk=old.pk).exists()


def test_retention_is_a_superusers_action_and_keeps_live_and_recent_calls(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    old = calls["flagged"]
    CallSession.objects.filter(pk=old.pk).update(ended_at=timezone.now() - timedelta(days=31))
    chosen = [old.pk, calls["live"].pk, calls["busy"].pk]

    response = staff_client.post(
        CALLS,
        {"action": "delete_for_retention", "_selected_action": chosen, "index": 0},
        follow=True,
    )

    assert response.status_code == 200
    said = [str(message) for message in response.context["messages"]]
    assert said == [
        "deleted 1 call(s) and their records; 2 kept (live, or ended less than 30 days ago)"
    ]
    assert not CallSession.objects.filter(pk=old.pk).exists()
    assert CallSession.objects.filter(pk__in=[calls["live"].pk, calls["busy"].pk]).count() == 2


def test_calls_export_as_csv(staff_client: Client, calls: dict[str, CallSession]) -> None:
    chosen = [calls["flagged"].pk, calls["busy"].pk]

    response = staff_client.post(
        CALLS, {"action": "export_calls", "_selected_action": chosen, "index": 0}
    )

    with pytest.warns(Warning, match="consume asynchronous iterators"):  # the test client's
        content = b"".join(response)  # sync; Uvicorn streams it as read
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert {row["to"] for row in rows} == {"'+15550002222"}  # never run as a formula
    assert response["Content-Type"] == "text/csv"
    by_sid = {row["call_sid"]: row["barge_ins"] for row in rows}
    assert by_sid == {GOODBYE_SID: "1", "CA-busy": "2"}
    assert rows[0]["suspects"] == "drain_before_final_mark,missed_barge_in"


def test_barge_ins_filter_by_reaction_and_link_to_their_call(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    slow = staff_client.get(BARGE_INS, {"reaction": "over_50"})

    rows = slow.context["cl"].result_list
    assert [row.reaction_ms for row in rows] == [75.0]
    assert f'href="{CALLS}{calls["busy"].pk}/change/"' in slow.content.decode()


def test_barge_ins_filter_by_their_calls_end_reason(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    CallSession.objects.filter(pk=calls["busy"].pk).update(end_reason="agent_hangup")

    response = staff_client.get(BARGE_INS, {"call_end_reason": "agent_hangup"})

    assert {row.call_id for row in response.context["cl"].result_list} == {calls["busy"].pk}


def test_log_rows_filter_speech_that_began_before_playout_ended(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    log = calls["quiet"].playout_logs.get(kind=RecordKind.USER_SPEECH_AI_SILENT)
    log.onset_after_end_ms = -120
    log.save()

    response = staff_client.get(
        LOGS, {"kind__exact": RecordKind.USER_SPEECH_AI_SILENT, "onset": "before_end"}
    )

    assert [row.pk for row in response.context["cl"].result_list] == [log.pk]


def test_one_calls_log_reads_in_its_own_order(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    call = calls["flagged"]

    response = staff_client.get(LOGS, {"call": call.pk})

    offsets = [row.offset_ms for row in response.context["cl"].result_list]
    assert offsets == sorted(offsets)
    assert len(offsets) == call.playout_logs.count()
    assert "Add playout log" not in response.content.decode()


def test_the_log_count_is_capped() -> None:
    class Few(CappedPaginator):
        CAP = 3

    assert Few(list(range(10)), 2).count == 3
    assert Few(list(range(2)), 2).count == 2
