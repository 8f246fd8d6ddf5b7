"""`response.create` only when no response is active (the service refuses it otherwise)."""

from __future__ import annotations

import json

from callcore import RecordKind
from callcore.asks import ALREADY_ACTIVE, Asks
from callcore.protocol import realtime as rt
from tests.callcore.harness import greeting_run


def test_an_ask_waits_for_the_active_response_or_is_dropped() -> None:
    asks = Asks()
    assert asks.ask("Greet.", busy=True, wait=False) == []  # the model already answers
    assert asks.idle(busy=False) == []
    assert asks.ask(None, busy=True, wait=True) == []  # after a tool's output, say
    assert asks.idle(busy=True) == []  # another response still active
    [create] = asks.idle(busy=False)
    assert create.text == '{"type": "response.create"}'
    assert asks.ask(None, busy=False, wait=True) == []  # one in flight: this one waits
    asks.created()
    assert asks.idle(busy=True) == []
    assert len(asks.idle(busy=False)) == 1


def test_a_waiting_ask_keeps_its_instructions_and_a_new_session_forgets_it() -> None:
    asks = Asks()
    assert asks.ask("Read the order back.", busy=True, wait=True) == []
    assert asks.ask("Newer.", busy=True, wait=True) == []  # the latest wins
    [create] = asks.idle(busy=False)
    assert json.loads(create.text) == {
        "type": "response.create",
        "response": {"instructions": "Newer."},
    }
    assert asks.ask("Again.", busy=True, wait=True) == []
    asks.forget()
    assert asks.idle(busy=False) == []
    # Refused while a response was active: not in flight any more, asked again at once.
    assert len(asks.ask(None, busy=False, wait=False)) == 1
    asks.refused()
    assert len(asks.ask(None, busy=False, wait=False)) == 1


def test_a_greeting_asked_as_the_caller_began_is_refused_and_the_call_goes_on() -> None:
    """Server VAD starts an answer to the caller as the greeting is asked: the service
    refuses the greeting (the real code), the caller's answer plays, nothing is asked again."""
    run = greeting_run()
    assert len(run.model_events("response.create")) == 1
    run.answer("r_vad", "i1", 600, done=False)
    run.event(rt.ServerError(ALREADY_ACTIVE, "Conversation already has an active response", "", ""))
    run.event(rt.AudioDone("r_vad", "i1"))
    run.event(rt.ResponseDone("r_vad", "completed", ()))
    run.step(2.0)

    assert len(run.model_events("response.create")) == 1
    assert run.heard_ms() == 600
    [error] = run.of_kind(RecordKind.MODEL_ERROR)
    assert error.details["code"] == ALREADY_ACTIVE
    assert run.ended is None
