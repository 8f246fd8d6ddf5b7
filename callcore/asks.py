"""Asking the model for an answer: `response.create` only when no response is active.

The service refuses a `response.create` while a response is active
(`conversation_already_has_active_response`), and a response is active from
the moment one is asked for until its `response.done`: one the bridge asked
for, or one server VAD started on its own. Which responses are generating is
the playout tracker's to know (`busy`); this keeps the ask in flight and the
one waiting for its turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from callcore.outputs import ToModel
from callcore.protocol import realtime as rt

ALREADY_ACTIVE = "conversation_already_has_active_response"


@dataclass(frozen=True, slots=True)
class _Ask:
    instructions: str | None
    tools: bool = True
    # Owed, whatever happens to this attempt (a tool's result): a refusal puts it back.
    wait: bool = False


class Asks:
    def __init__(self) -> None:
        # A `response.create` sent and not yet answered by a `response.created` (or refused).
        self._in_flight: _Ask | None = None
        # An answer that must still be asked for once no response is active.
        self._waiting: _Ask | None = None

    def ask(
        self, instructions: str | None, *, busy: bool, wait: bool, tools: bool = True
    ) -> list[ToModel]:
        """Ask for an answer now if no response is active.

        Otherwise, with `wait` it is asked for once the active one is done (what
        the model must answer after a tool's output, say); without, it is not
        asked at all (a greeting, once the model already answers the caller).
        `tools` False: an answer that may call no tool (a holding line).
        """
        ask = _Ask(instructions, tools, wait)
        if busy or self._in_flight is not None:
            if wait:
                self._waiting = ask
            return []
        self._in_flight = ask
        return [ToModel(rt.response_create(instructions, tools))]

    @property
    def in_flight(self) -> bool:
        """A `response.create` is on its way, not yet answered."""
        return self._in_flight is not None

    def created(self) -> None:
        """A response started (asked for or not): the service has answered the ask."""
        self._in_flight = None

    def refused(self) -> None:
        """The ask came while a response was active (a race with server VAD): it is not
        in flight any more; one that must wait (a tool's answer) waits for that
        response to end, and an ask already waiting still waits."""
        refused, self._in_flight = self._in_flight, None
        if refused is not None and refused.wait and self._waiting is None:
            self._waiting = refused

    def idle(self, busy: bool) -> list[ToModel]:
        """A response is done: the waiting ask, if nothing is active any more."""
        if busy or self._in_flight is not None or self._waiting is None:
            return []
        waiting, self._waiting = self._waiting, None
        return self.ask(waiting.instructions, busy=False, wait=waiting.wait, tools=waiting.tools)

    def forget(self) -> None:
        """A new session: nothing of the old one is in flight or waiting."""
        self._in_flight = None
        self._waiting = None
