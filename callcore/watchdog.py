"""Whether the model is still answering: a response due that does not start, or one that stalls.

A Realtime session can stay connected and stop sending events (or stop
reading too): the caller then hears nothing, for as long as nobody notices.
The watchdog holds one deadline. It is armed when an answer is due (the
bridge asked for one, or the caller stopped speaking and server VAD will
answer) and re-armed by every sign of life of an open response; it is
disarmed when the response is done or the caller starts speaking (no answer
is due while they talk).

A session can also go quiet when nothing is owed, as far as we know: the
caller spoke, but a session that stopped sending says nothing of it. So when
the model has sent nothing for `idle_probe_ms`, the core sends a probe that
every live session answers (`session.update` with no changes answers
`session.updated`); no event at all within `response_start_ms` of it is a
fault too. A silent session is noticed within idle_probe + response_start
of its last event, and within response_start of an answer falling due.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Quiet(enum.StrEnum):
    """What the model failed to do in time."""

    NO_RESPONSE = "no_response"  # an answer was due and did not start
    STALLED = "stalled"  # an open answer stopped producing
    UNRESPONSIVE = "unresponsive"  # nothing at all, not even to a probe


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    """Bounds in ms. The real service starts an answer within about a second and
    streams it faster than real time; five seconds of nothing is a fault."""

    response_start_ms: int = 5000
    response_stall_ms: int = 5000
    idle_probe_ms: int = 5000


class ModelWatchdog:
    """One deadline for the model's next sign of life; pure, every input takes `now`."""

    def __init__(self, config: WatchdogConfig | None = None, now: float = 0.0) -> None:
        self.config = config or WatchdogConfig()
        self._idle_probe_s = self.config.idle_probe_ms / 1000
        self._response_start_s = self.config.response_start_ms / 1000
        self._open: set[str] = set()
        self._deadline: float | None = None
        self._why: Quiet | None = None
        self._heard_at = now
        self._probe_sent_at: float | None = None

    @property
    def deadline(self) -> float:
        """The next moment something is due: a fault, or a probe to send."""
        probe = self._probe_deadline()
        fault = self._deadline
        return probe if fault is None or probe < fault else fault

    def _probe_deadline(self) -> float:
        if self._probe_sent_at is None:
            return self._heard_at + self._idle_probe_s
        return self._probe_sent_at + self._response_start_s

    def heard(self, now: float) -> None:
        """The model sent something: it is alive."""
        self._heard_at = now
        self._probe_sent_at = None

    def probe_due(self, now: float) -> bool:
        """Whether to send a probe now (then call `probe_sent`)."""
        return self._probe_sent_at is None and now >= self._probe_deadline()

    def probe_sent(self, now: float) -> None:
        self._probe_sent_at = now

    @property
    def answer_owed(self) -> bool:
        """Whether an answer is due or under way (a replacement session must give it)."""
        return self._why is not None

    def response_due(self, now: float) -> None:
        """An answer was requested, or server VAD will create one."""
        if not self._open:
            self._arm(now, self.config.response_start_ms, Quiet.NO_RESPONSE)

    def response_started(self, response_id: str, now: float) -> None:
        self._open.add(response_id)
        self._arm(now, self.config.response_stall_ms, Quiet.STALLED)

    def activity(self, response_id: str, now: float) -> None:
        """Audio or words of a response arrived."""
        if response_id in self._open:
            self._arm(now, self.config.response_stall_ms, Quiet.STALLED)

    def response_done(self, response_id: str, now: float) -> None:
        self._open.discard(response_id)
        if not self._open and self._why is Quiet.STALLED:
            self.disarm()

    def caller_speaking(self) -> None:
        """The caller talks: no answer is owed until they stop."""
        if not self._open:
            self.disarm()

    def disarm(self) -> None:
        self._deadline = None
        self._why = None

    def reset(self, now: float) -> None:
        """A new session, from `now`: nothing of the old one is open or outstanding."""
        self._open.clear()
        self.disarm()
        self.heard(now)

    def expired(self, now: float) -> Quiet | None:
        """What the model failed to do, once a deadline has passed (then all is reset)."""
        if self._deadline is not None and now >= self._deadline:
            why = self._why
        elif self._probe_sent_at is not None and now >= self._probe_deadline():
            why = Quiet.UNRESPONSIVE
        else:
            return None
        self.reset(now)
        return why

    def _arm(self, now: float, ms: int, why: Quiet) -> None:
        self._deadline = now + ms / 1000
        self._why = why
