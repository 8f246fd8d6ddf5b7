"""A call's lifecycle: one explicit state, moved only by named transitions.

Modelled on h11's `_state.py`: the phase is one value, every change of it is
an event looked up in one table, and an event the table does not allow in
the current phase changes nothing. The core asks the phase what a call is
doing, and which inputs it takes (a session being replaced is heard no
more; nothing is taken once the call has ended); nothing else keeps a flag
of its own about it.

    CONNECTING --opened--> TALKING --fault--> RECOVERING --replaced--> TALKING
                              |   <---------- (fault again: RECOVERING) ---'
                              +--goodbye_asked--> CLOSING --drain--> DRAINING
            CLOSING, DRAINING --barge_in--> TALKING (the conversation goes on)
            CLOSING, DRAINING --model_lost--> LAST_WORDS (nothing more from the model)
                          any --end--> ENDED

A deploy's handover is not a phase: it is a deadline (`handover_by`) by
which the call ends as `server_shutdown`, sooner at its next pause, whatever
phase it is in.
"""

from __future__ import annotations

import enum

from callcore.records import EndReason


class Phase(enum.Enum):
    CONNECTING = "connecting"  # the stream is up; the model session is opening
    TALKING = "talking"  # the conversation: the model session open and watched
    RECOVERING = "recovering"  # the model went quiet or away; a replacement is opening
    CLOSING = "closing"  # the model asked to hang up; its answer is still generating
    DRAINING = "draining"  # the goodbye plays to its end, then the call ends
    LAST_WORDS = "last_words"  # the model is gone: what the caller hears plays out, then the end
    ENDED = "ended"


class Event(enum.Enum):
    OPENED = "opened"  # the model session is open and configured
    FAULT = "fault"  # the model went quiet or away: a replacement is opening
    REPLACED = "replaced"  # the replacement session is open, told the conversation
    GOODBYE_ASKED = "goodbye_asked"  # end_call, while its response still runs
    DRAIN = "drain"  # nothing more is generating: the goodbye drains
    BARGE_IN = "barge_in"  # the caller spoke over the goodbye: it is called off
    MODEL_LOST = "model_lost"  # the model's socket closed during a goodbye


_TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (Phase.CONNECTING, Event.OPENED): Phase.TALKING,
    (Phase.TALKING, Event.FAULT): Phase.RECOVERING,
    (Phase.RECOVERING, Event.FAULT): Phase.RECOVERING,
    (Phase.RECOVERING, Event.REPLACED): Phase.TALKING,
    (Phase.TALKING, Event.GOODBYE_ASKED): Phase.CLOSING,
    (Phase.CLOSING, Event.DRAIN): Phase.DRAINING,
    (Phase.CLOSING, Event.BARGE_IN): Phase.TALKING,
    (Phase.DRAINING, Event.BARGE_IN): Phase.TALKING,
    (Phase.CLOSING, Event.MODEL_LOST): Phase.LAST_WORDS,
    (Phase.DRAINING, Event.MODEL_LOST): Phase.LAST_WORDS,
}

# Phases in which the goodbye's drain runs.
DRAINING_PHASES = frozenset({Phase.DRAINING, Phase.LAST_WORDS})
# Phases in which the model asked to hang up (and a barge-in calls it off).
GOODBYE_PHASES = frozenset({Phase.CLOSING, Phase.DRAINING})


class Lifecycle:
    """The phase of one call, the reason it ended, and a handover's deadline."""

    def __init__(self) -> None:
        self.phase = Phase.CONNECTING
        self.end_reason: EndReason | None = None
        # A deploy: end as server_shutdown at the next pause, or by this time (monotonic s).
        self.handover_by: float | None = None

    def move(self, event: Event) -> bool:
        """Take `event`'s transition; False (and nothing changes) where it is not allowed."""
        target = _TRANSITIONS.get((self.phase, event))
        if target is None:
            return False
        self.phase = target
        return True

    def end(self, reason: EndReason) -> bool:
        """The call is over, for `reason`; False if it had ended already."""
        if self.phase is Phase.ENDED:
            return False
        self.phase = Phase.ENDED
        self.end_reason = reason
        return True

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    def hand_over_by(self, deadline: float) -> bool:
        """Ask for a handover by `deadline`; False if ended or already asked."""
        if self.phase is Phase.ENDED or self.handover_by is not None:
            return False
        self.handover_by = deadline
        return True
