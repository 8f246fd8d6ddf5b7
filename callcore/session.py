"""The model session's life: watched while it talks, replaced when it goes quiet or away.

The phase (open, recovering...) is the lifecycle's; this owns what goes with
it: the watchdog's deadline, how many replacements this call has had and
may have, whether the replacement owes the caller an answer, and the client
events that bring a new session up to date.
"""

from __future__ import annotations

from collections.abc import Sequence

from callcore.conversation import Turn
from callcore.outputs import ToModel
from callcore.protocol import realtime as rt
from callcore.watchdog import ModelWatchdog, Quiet, WatchdogConfig

# What the model failed to do, in a log line's words.
QUIET_WORDS = {
    Quiet.NO_RESPONSE: "did not start an answer that was due",
    Quiet.STALLED: "stopped in the middle of an answer",
    Quiet.UNRESPONSIVE: "did not answer a probe",
}


class ModelSession:
    def __init__(self, watchdog: WatchdogConfig, max_recoveries: int, now: float) -> None:
        self.watchdog = ModelWatchdog(watchdog, now)
        self.max_recoveries = max_recoveries
        # Replacement sessions opened since the model last completed an answer.
        self.recoveries = 0
        # The replacement opening now owes the caller the answer the old one did not give.
        self.answer_owed = False

    def fault(self, owed: bool, now: float) -> int | None:
        """The session went quiet or away: the replacement's attempt number, or None
        when the call has had all it may."""
        attempt = self.recoveries + 1
        if attempt > self.max_recoveries:
            return None
        self.recoveries = attempt
        self.answer_owed = owed
        self.watchdog.reset(now)
        return attempt

    def working(self) -> None:
        """An answer completed: the session works, and faults from here are new ones."""
        self.recoveries = 0

    def replaced(self, now: float) -> None:
        """The replacement is open; if it owes an answer, that answer is now due."""
        if self.answer_owed:
            self.watchdog.response_due(now)

    def probe(self, now: float) -> ToModel | None:
        """A probe to send to a model that has said nothing for a while, if one is due."""
        if not self.watchdog.probe_due(now):
            return None
        self.watchdog.probe_sent(now)
        return ToModel(rt.session_probe())


def catch_up(seed: Sequence[Turn], replay: Sequence[str], owed: bool) -> list[ToModel]:
    """What a replacement session is told before it is asked for the answer it owes
    (if any): the conversation so far, and the caller's audio it never reacted to.

    When an answer is owed, the replayed words become the caller's turn now;
    if server VAD already made one of them (and its answer), the commit and
    the answer asked for are refused harmlessly: one answer either way.
    """
    out = [ToModel(rt.message_item(turn.role, turn.text)) for turn in seed]
    out += [ToModel(append) for append in replay]
    if owed and replay:
        out.append(ToModel(rt.input_audio_commit()))
    return out
