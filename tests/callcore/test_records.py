"""The vocabulary: every word spelled once, and the facts an end reason carries."""

from __future__ import annotations

import pytest

from callcore.records import (
    AfterStream,
    CallState,
    EndReason,
    FindingRule,
    RecordKind,
    after_stream,
    ended_by,
    rule_label,
    twilio_end_reason,
)


@pytest.mark.parametrize("words", [CallState, RecordKind, EndReason, FindingRule])
def test_each_word_is_its_name_in_lower_case_with_a_label(words: type) -> None:
    for word in words:
        assert word.value.replace("-", "_") == word.name.lower()
        assert word.label


def test_an_end_reason_says_who_ended_the_call_and_what_twilio_does_next() -> None:
    assert EndReason.of("caller_hangup") is EndReason.CALLER_HANGUP
    assert EndReason.of("CALLER_HANGUP") is None
    assert EndReason.of(twilio_end_reason("completed")) is None
    # Nobody is left to hear anything once the caller has gone.
    assert {r for r in EndReason if r.caller_gone} == {
        EndReason.CALLER_HANGUP,
        EndReason.CALLER_DISCONNECTED,
    }
    assert after_stream("server_shutdown") is AfterStream.HAND_OVER
    assert after_stream("agent_hangup") is AfterStream.HANG_UP
    assert after_stream("operator_hangup") is AfterStream.HANG_UP
    # A fault, an end not written yet, or one only Twilio saw: the caller hears an apology.
    for reason in ("model_unresponsive", "internal_error", "", None, "twilio_failed"):
        assert after_stream(reason) is AfterStream.APOLOGISE
    assert (EndReason.SERVER_SHUTDOWN.close_code, EndReason.PROTOCOL_ERRORS.close_code) == (
        1012,
        4400,
    )
    assert ended_by("server_lost") == "the server process died"
    assert ended_by("twilio_busy") == "Twilio reported the call busy"


def test_finding_rules_read_as_words() -> None:
    assert rule_label(FindingRule.DRAIN_BEFORE_FINAL_MARK) == "goodbye cut"
    assert rule_label("a_rule_from_a_later_version") == "a rule from a later version"
