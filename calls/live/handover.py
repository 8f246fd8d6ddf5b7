"""A deploy hands calls over: no call is dropped when its process stops.

The pieces, in the order a handover takes them:

1. `Shutdown`: on SIGTERM (or SIGINT) the process asks every call it holds
   to end as `server_shutdown` at its next pause (the AI neither speaking
   nor generating, the caller not speaking, no answer owed), or when the
   grace period is over, whichever comes first. Uvicorn would otherwise
   close every WebSocket at once, mid-answer if need be. Once no call is
   left (or the grace period and a margin are over), the server's own
   handler runs and it shuts down as usual; a second signal skips the wait.
2. Twilio, its stream closed, asks our `<Connect action>`, which answers a
   new `<Connect><Stream>` (`calls.views.stream_ended`); the load balancer
   sends it to a live process.
3. `reclaim`: that process's stream claims the call again, only just after
   the shutdown ended it (`HANDOVER_WINDOW`).
4. `conversation_so_far`: the new Realtime session is told the conversation,
   read back from the call's `conversation_turn` records.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from django.db.models import F

from callcore.conversation import MAX_SEED_TURNS, Turn
from callcore.records import EndReason, RecordKind
from calls.live.preopen import PreopenedSessions
from calls.live.roster import LiveCall, Roster
from calls.models import CallSession, PlayoutLog

logger = logging.getLogger(__name__)

# Past the grace period, how long the calls get to close their streams.
_MARGIN_S = 3.0
# How soon after a shutdown ended a call its handed-over stream must claim it.
HANDOVER_WINDOW = timedelta(seconds=60)


class Shutdown:
    """The process's SIGTERM: its calls handed over at a pause (`grace_s` 0: off)."""

    def __init__(self, roster: Roster, preopened: PreopenedSessions, grace_s: float) -> None:
        self._roster = roster
        self._preopened = preopened
        self.grace_s = grace_s
        # While draining: when the grace period ends (loop time).
        self._until: float | None = None
        self._installed = False
        self._background: set[asyncio.Task[None]] = set()

    @property
    def draining(self) -> bool:
        """Whether this process is handing its calls over (it is shutting down)."""
        return self._until is not None

    def call_joined(self, call: LiveCall) -> None:
        """A call that starts here while the process drains is handed over at once too."""
        if self._until is not None:
            remaining = self._until - asyncio.get_running_loop().time()
            call.hand_over(max(0.0, remaining))

    async def drain(self) -> None:
        """Ask every call to hand over at its next pause; return when none is left (calls
        that arrive meanwhile included), or after the grace period and a margin."""
        loop = asyncio.get_running_loop()
        self._until = loop.time() + self.grace_s
        deadline = self._until + _MARGIN_S
        calls = self._roster.calls()
        logger.warning(
            "shutting down: handing %d call(s) over at their next pause (at most %.0f s)",
            len(calls),
            self.grace_s,
        )
        for call in calls:
            call.hand_over(self.grace_s)
        # Streams still to come here would be handed over at once: their sessions go.
        self._preopened.discard_all()
        while (calls := self._roster.calls()) and loop.time() < deadline:
            await asyncio.wait(
                [asyncio.ensure_future(call.wait_ended()) for call in calls],
                timeout=deadline - loop.time(),
                return_when=asyncio.FIRST_COMPLETED,
            )

    def install(self) -> bool:
        """Put the drain in front of the server's own SIGTERM/SIGINT handlers.

        Only in the main thread of a running event loop (the server's), once;
        False where it cannot be (a management command, a test) or is off.
        """
        if self._installed or self.grace_s <= 0:
            return self._installed
        if threading.current_thread() is not threading.main_thread():
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if callable(previous):
                signal.signal(sig, self._handler(loop, previous))
        self._installed = True
        logger.debug("calls are handed over at a pause on SIGTERM (grace %.0f s)", self.grace_s)
        return True

    def _handler(
        self, loop: asyncio.AbstractEventLoop, previous: Callable[[int, FrameType | None], Any]
    ) -> Callable[[int, FrameType | None], None]:
        def handle(sig: int, frame: FrameType | None) -> None:
            if self.draining or not len(self._roster):
                previous(sig, frame)  # a second signal, or nothing to hand over: stop now
                return

            async def drain_then_stop() -> None:
                try:
                    await self.drain()
                finally:
                    previous(sig, None)

            def start() -> None:
                task = loop.create_task(drain_then_stop())
                self._background.add(task)
                task.add_done_callback(self._background.discard)

            # The drain starts on the loop; till then a second signal must still count.
            self._until = loop.time() + self.grace_s
            loop.call_soon_threadsafe(start)

        return handle


def reclaim(call_sid: str, stream_sid: str, streaming: dict[str, Any], now: datetime) -> int:
    """Claim a call its stream's process handed over (it ended `server_shutdown` within
    `HANDOVER_WINDOW`, on another stream): how many rows were claimed (0 or 1).

    Only just after the shutdown: a call left at `server_shutdown` (the caller
    hung up during the handover) cannot be reopened later with an old token.
    """
    return int(
        CallSession.objects.filter(
            call_sid=call_sid,
            end_reason=EndReason.SERVER_SHUTDOWN,
            ended_at__gte=now - HANDOVER_WINDOW,
        )
        .exclude(stream_sid=stream_sid)
        .update(
            **streaming,
            ended_at=None,
            end_reason="",
            handovers=F("handovers") + 1,
            # Live again: the review of the first leg no longer describes the call.
            reviewed_at=None,
            duration_ms=None,
        )
    )


def conversation_so_far(call_pk: int, limit: int = MAX_SEED_TURNS) -> list[Turn]:
    """The call's turns with words, oldest first, at most `limit` of the latest.

    The same turns the call's core kept in memory, each with its latest words
    (a turn is recorded again when its words change, e.g. the heard part of an
    answer cut by a barge-in). Ordered by when each turn was first recorded
    (wall clock: a handed-over call's streams each count their offsets from
    their own start).
    """
    rows = PlayoutLog.objects.filter(call_id=call_pk, kind=RecordKind.CONVERSATION_TURN).order_by(
        "occurred_at", "id"
    )
    turns: dict[str, Turn] = {}
    for details in rows.values_list("details", flat=True):
        item_id = str(details.get("item_id", ""))
        role, text = str(details.get("role", "")), str(details.get("text", ""))
        if item_id in turns:
            turns[item_id].text = text
        else:
            turns[item_id] = Turn(len(turns) + 1, role, item_id, text)
    return [turn for turn in turns.values() if turn.text][-limit:]
