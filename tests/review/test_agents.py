"""Agents, tool calls and transfers in the review: the call's page, the call list and
`drain_diagnostics`, on real rows."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from callcore.records import RecordKind
from calls.models import CallSession
from calls.review import listing
from tests.review.conftest import (
    GOODBYE_SID,
    SALES_AGENT,
    TRANSFER_SID,
    goodbye_call,
    new_call,
    tool_call,
    transfer_call,
    transfer_cancelled_call,
    with_agent,
)

pytestmark = pytest.mark.django_db

CALLS = "/admin/calls/callsession/"


def page(client: Client, call: CallSession) -> str:
    response = client.get(f"{CALLS}{call.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def field(body: str, name: str) -> str:
    """The shown value of a read-only field of the call's page, tags stripped."""
    found = re.search(
        rf'<div class="form-row field-{name}">.*?<div class="readonly">(.*?)</div>\s*</div>',
        body,
        re.S,
    )
    assert found, f"no field {name}"
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found[1])).strip())


def sids(response: Any) -> list[str]:
    return [row.call_sid for row in response.context["cl"].result_list]


def run(*args: str) -> str:
    out = StringIO()
    call_command("drain_diagnostics", *args, stdout=out)
    return out.getvalue()


def block(out: str, sid: str) -> list[str]:
    (found,) = [b for b in out.split("\n\n") if b.startswith(sid + "  ")]
    return found.splitlines()


# --- the call's page ---------------------------------------------------------------------------


def test_the_call_page_shows_the_agent_that_answered(staff_client: Client) -> None:
    body = page(staff_client, transfer_call())

    assert field(body, "agent_shown") == "sales-desk"
    assert field(body, "agent_source") == "chosen by the host's hook"
    assert field(body, "agent_voice") == "marin"
    assert field(body, "agent_language") == "en"
    assert field(body, "agent_tools") == "lookup_order, check_stock"
    assert field(body, "agent_transfer_targets") == "Billing (+15550004444), Sales (+15550003333)"
    assert field(body, "agent_turn_detection") == (
        "VAD threshold 0.6, silence 500 ms, prefix padding 300 ms"
    )
    assert field(body, "agent_greeting") == "Sales desk, how can I help?"
    # Long instructions fold behind their first line; the whole is one click away.
    assert '<details class="agent-instructions"><summary>You answer for the sales desk.…' in body
    assert "Be brief. Be brief." in field(body, "agent_instructions")


def test_a_transferred_call_says_where_it_went_above_its_timeline(staff_client: Client) -> None:
    body = page(staff_client, transfer_call())

    banner = body[body.index('id="call-transfer"') : body.index('id="call-review"')]
    assert "Transferred to Sales (+15550003333)" in banner
    assert "end reason: Transferred to a person (transferred)" in banner
    assert "the AI transferred the call" in banner
    assert field(body, "transferred_to") == "Sales (+15550003333)"
    assert field(body, "ended_by") == "the AI transferred the call"
    assert body.index('field-ended_by"') < body.index('field-transferred_to"')


def test_the_timeline_of_the_call_page_draws_its_tools_keypad_and_transfer(
    staff_client: Client,
) -> None:
    body = page(staff_client, transfer_call())

    assert body.count('data-kind="tool"') == 2
    assert 'data-kind="tool" data-offset-ms="4200" data-end-ms="5350"' in body
    assert 'class="tl-tool tl-tool--error"' in body
    assert 'data-dispatch-ms="0.8" data-reply-ms="1.3"' in body
    assert "arguments: card=&quot;[redacted]&quot;, order_id=&quot;A-4521&quot;" in body
    assert "error: stock service unavailable" in body
    assert 'data-kind="hold" data-offset-ms="5200"' in body
    assert 'data-kind="keypad" data-offset-ms="3100"' in body
    assert 'data-kind="transfer" data-offset-ms="9500"' in body
    assert "transfer → Sales" in body
    assert "then Twilio dials Sales" in body
    assert '<text class="tl-lane-name" x="8" y="' in body
    assert ">Tools</text>" in body
    assert "2 tool calls" in body


def test_a_call_from_before_agents_shows_none_and_no_transfer(staff_client: Client) -> None:
    body = page(staff_client, goodbye_call())

    assert field(body, "agent_shown") == "- (none recorded)"
    assert field(body, "agent_tools") == "none"
    assert field(body, "agent_transfer_targets") == "none"
    assert 'id="call-transfer"' not in body
    assert "field-transferred_to" not in body
    assert ">Tools</text>" not in body


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("default", "the default agent (the host's hook chose none)"),
        ("default_after_error", "the default agent: the host's hook failed"),
        ("default_after_timeout", "the default agent: the host's hook took too long"),
        ("from_the_future", "from_the_future"),
    ],
)
def test_the_page_says_why_the_default_agent_answered(
    staff_client: Client, source: str, words: str
) -> None:
    agent = {"name": "default", "instructions": "Be helpful.", "source": source}
    call = with_agent(new_call("CA-default"), agent).save()

    body = page(staff_client, call)

    assert field(body, "agent_source") == words
    assert field(body, "agent_instructions") == "Be helpful."  # short: shown whole
    assert field(body, "agent_greeting") == "- (waits for the caller)"


def test_a_target_stored_with_its_number_or_unknown_to_the_agent_shows_as_stored(
    staff_client: Client,
) -> None:
    listed = with_agent(
        new_call("CA-with-number"), end_reason="transferred", transfer_target="Sales (+1555)"
    ).save()
    unknown = with_agent(
        new_call("CA-unknown"), end_reason="transferred", transfer_target="Legal"
    ).save()

    assert field(page(staff_client, listed), "transferred_to") == "Sales (+1555)"
    assert field(page(staff_client, unknown), "transferred_to") == "Legal"


def test_a_transferred_call_without_its_target_says_so(staff_client: Client) -> None:
    call = with_agent(new_call("CA-no-target"), end_reason="transferred").save()

    body = page(staff_client, call)

    assert "Transferred to a person (the target was not recorded)" in body
    assert field(body, "transferred_to") == "- (not recorded)"


def test_a_cancelled_transfer_is_an_interrupted_transfer_not_a_transfer(
    staff_client: Client,
) -> None:
    body = page(staff_client, transfer_cancelled_call())

    assert 'id="call-transfer"' not in body  # the call went on, and the caller hung up
    assert "transfer interrupted" in body
    assert "the transfer to Billing was interrupted, the call went on" in body


def test_the_call_page_costs_no_query_more_for_an_agent_and_tools(staff_client: Client) -> None:
    plain, agented = goodbye_call(), transfer_call()
    page(staff_client, plain)  # session and permission caches warm

    with CaptureQueriesContext(connection) as few:
        page(staff_client, plain)
    with CaptureQueriesContext(connection) as more:
        page(staff_client, agented)

    assert len(more) == len(few)


# --- the call list -----------------------------------------------------------------------------


@pytest.fixture
def calls() -> dict[str, CallSession]:
    support = {**SALES_AGENT, "name": "support"}
    return {
        "transferred": transfer_call(),
        "cancelled": transfer_cancelled_call(),
        "support": with_agent(new_call("CA-support"), support).save(),
        "plain": goodbye_call(),
    }


def test_the_list_filters_by_agent(staff_client: Client, calls: dict[str, CallSession]) -> None:
    everyone = staff_client.get(CALLS)
    sales = staff_client.get(CALLS, {"agent": "sales-desk"})
    support = staff_client.get(CALLS, {"agent": "support"})

    (agents,) = [f for f in everyone.context["cl"].filter_specs if f.title == "agent"]
    assert agents.lookup_choices == [("sales-desk", "sales-desk"), ("support", "support")]
    assert set(sids(sales)) == {TRANSFER_SID, "CA-transfer-cancelled"}
    assert sids(support) == ["CA-support"]
    assert "?agent=sales-desk" in everyone.content.decode()


def test_transferred_calls_are_found_through_the_end_reason_filter(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    response = staff_client.get(CALLS, {"end_reason": "transferred"})

    assert sids(response) == [TRANSFER_SID]
    assert "Transferred to a person" in response.content.decode()


def test_the_list_shows_the_agent_and_where_a_call_was_transferred(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    body = staff_client.get(CALLS).content.decode()

    assert '<span class="call-agent quiet" title="agent: sales-desk">sales-desk</span>' in body
    assert '<span class="call-agent quiet" title="agent: support">support</span>' in body
    assert (
        'transferred<br><span class="call-transfer quiet" '
        'title="transferred to Sales (+15550003333)">→ Sales</span>'
    ) in body


def test_the_agent_filter_offers_the_chosen_agent_even_when_it_is_not_recent(
    staff_client: Client, calls: dict[str, CallSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "AGENT_SAMPLE", 1)  # only the newest call's agent

    response = staff_client.get(CALLS, {"agent": "support"})

    (agents,) = [f for f in response.context["cl"].filter_specs if f.title == "agent"]
    assert ("support", "support") in agents.lookup_choices
    assert sids(response) == ["CA-support"]


def test_the_agent_filter_costs_one_bounded_query_whatever_the_list(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    staff_client.get(CALLS)
    with CaptureQueriesContext(connection) as few:
        staff_client.get(CALLS, {"agent": "sales-desk"})
    for n in range(20):
        with_agent(new_call(f"CA-more-{n:02d}"), {"name": f"agent-{n}"}).save()

    with CaptureQueriesContext(connection) as many:
        staff_client.get(CALLS, {"agent": "sales-desk"})

    assert len(many) == len(few)
    sql = " ".join(query["sql"] for query in many.captured_queries)
    assert "calls_playoutlog" not in sql
    assert "DISTINCT" not in sql.upper()
    assert re.search(r'"agent_name" FROM "calls_callsession" .*LIMIT 500', sql)


def test_the_export_has_the_agent_and_the_transfer_target(
    staff_client: Client, calls: dict[str, CallSession]
) -> None:
    chosen = [calls["transferred"].pk, calls["plain"].pk]

    response = staff_client.post(
        CALLS, {"action": "export_calls", "_selected_action": chosen, "index": 0}
    )

    with pytest.warns(Warning, match="consume asynchronous iterators"):
        content = b"".join(response)
    rows = {row["call_sid"]: row for row in csv.DictReader(io.StringIO(content.decode()))}
    assert (rows[TRANSFER_SID]["agent"], rows[TRANSFER_SID]["transfer_target"]) == (
        "sales-desk",
        "Sales",
    )
    assert (rows[GOODBYE_SID]["agent"], rows[GOODBYE_SID]["transfer_target"]) == ("", "")


# --- drain_diagnostics -------------------------------------------------------------------------


def test_the_text_report_lists_tool_calls_and_the_drain_that_ended_in_a_transfer() -> None:
    transfer_call()

    header, agent, link, admin, *events = block(run(), TRANSFER_SID)

    assert header.startswith(f"{TRANSFER_SID}  completed (transferred)  started ")
    assert agent == "  agent sales-desk"
    assert (link, admin[:8]) == ("  link not measured", "  admin ")
    assert events == [
        "   4.200 s  tool       lookup_order  ok  1150 ms  dispatch 0.8 ms  reply 1.3 ms",
        "   8.200 s  tool       check_stock  error  400 ms  dispatch 0.8 ms  reply 1.3 ms  "
        'error "stock service unavailable"',
        "                       caller spoke meanwhile",
        "  10.000 s  drain      expected 1000 ms  actual 1100 ms  final mark echoed  "
        "ended in a transfer to Sales (+15550003333)",
    ]


def test_a_cancelled_transfer_drain_says_the_transfer_was_not_made() -> None:
    transfer_cancelled_call()

    (drain,) = [line for line in block(run(), "CA-transfer-cancelled") if "  drain  " in line]

    assert drain == (
        "   2.100 s  drain      expected 900 ms  cancelled (barge_in)  "
        "transfer to Billing (+15550004444) not made"
    )


def test_json_has_each_tool_call_and_the_transfer_of_each_drain() -> None:
    transfer_call()
    transfer_cancelled_call()
    goodbye_call()

    report = json.loads(run("--json"))

    by_sid = {call["call_sid"]: call for call in report["calls"]}
    transferred = by_sid[TRANSFER_SID]
    assert (transferred["agent_name"], transferred["transfer_target"]) == ("sales-desk", "Sales")
    assert [
        (t["name"], t["outcome"], t["duration_ms"], t["dispatch_ms"], t["reply_ms"])
        for t in transferred["tool_calls"]
    ] == [("lookup_order", "ok", 1150, 0.8, 1.3), ("check_stock", "error", 400, 0.8, 1.3)]
    assert transferred["tool_calls"][1] == {
        "offset_ms": 8200,
        "call_id": "fc_2",
        "name": "check_stock",
        "outcome": "error",
        "duration_ms": 400,
        "dispatch_ms": 0.8,
        "reply_ms": 1.3,
        "error": "stock service unavailable",
        "caller_spoke": True,
        "answer_asked": True,
    }
    (drain,) = transferred["drains"]
    assert (drain["outcome"], drain["end_reason"], drain["transfer_target"]) == (
        "completed",
        "transferred",
        "Sales (+15550003333)",
    )
    (cancelled,) = by_sid["CA-transfer-cancelled"]["drains"]
    assert (cancelled["outcome"], cancelled["transfer_target"]) == (
        "cancelled",
        "Billing (+15550004444)",
    )
    plain = by_sid[GOODBYE_SID]
    assert plain["tool_calls"] == []
    assert (plain["drains"][0]["end_reason"], plain["drains"][0]["transfer_target"]) == ("", "")


def test_a_long_tool_error_keeps_every_line_within_120_columns() -> None:
    builder = with_agent(new_call("CA-long-error"), {"name": "a" * 100})
    tool_call(builder, "t" * 90, 1000, 30_000, outcome="error", error="boom " * 80)
    builder.save()

    lines = block(run(), "CA-long-error")

    assert all(len(line) <= 120 for line in lines if not line.startswith("  admin"))
    (error,) = [line for line in lines if 'error "' in line]
    assert error.strip().startswith('error "boom boom')
    assert error.endswith('…"')


def test_a_transfer_drain_without_its_request_logged_names_the_calls_target() -> None:
    builder = with_agent(
        new_call("CA-no-request"), end_reason="transferred", transfer_target="Sales"
    )
    builder.log(RecordKind.DRAIN_STARTED, 1000, expected_wait_ms=500, end_reason="transferred")
    builder.log(
        RecordKind.DRAIN_COMPLETED, 1500, actual_wait_ms=500, final_mark_echoed=True, cut_off_ms=0
    )
    builder.save()

    (drain,) = json.loads(run("--json", "--call", "CA-no-request"))["calls"][0]["drains"]

    assert drain["transfer_target"] == "Sales"


def test_the_report_reads_tool_calls_in_the_same_queries(
    django_assert_max_num_queries: Any,
) -> None:
    for n in range(3):
        builder = new_call(f"CA-tools-{n}")
        for m in range(5):
            tool_call(builder, f"tool_{m}", 1000 * m, 500, call_id=f"fc_{m}")
        builder.save()

    with django_assert_max_num_queries(3):
        report = json.loads(run("--json"))

    assert [len(call["tool_calls"]) for call in report["calls"]] == [5, 5, 5]
