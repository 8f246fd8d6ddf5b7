"""Hanging up with a drain: the goodbye plays to its end, then the call ends."""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

from calls.models import EndReason
from calls.protocol import realtime as rt

if TYPE_CHECKING:
    from calls.bridge import CallBridge

logger = logging.getLogger(__name__)


class Hangup(enum.Enum):
    NONE = "none"
    REQUESTED = "requested"  # end_call received; the response is still running
    DRAINING = "draining"  # waiting for the goodbye to be heard


class Goodbye:
    """The end of a call the bridge decides: the model's `end_call`, or the model lost.

    The drain waits until `PlayoutTracker.drain_status` says the last audio
    was heard (its final mark echoed, or the safety deadline passed), so the
    call ends right after the goodbye, not before and not seconds later.
    """

    def __init__(self, bridge: CallBridge) -> None:
        self._bridge = bridge
        self.state = Hangup.NONE
        # Every end_call seen, never forgotten: a response.done that repeats a
        # call already cancelled by a barge-in must not hang up after all.
        self._seen: set[str] = set()
        self._call_ids: list[str] = []
        self._started_at = 0.0
        self._expected_ms = 0
        self._end_reason: str = EndReason.AGENT_HANGUP
        self.hard_deadline: float | None = None

    def requested(self, call_id: str, response_id: str, now: float) -> None:
        """The model called end_call (taken once per call_id, from either event).

        An end_call from a response the caller already interrupted is void.
        """
        if call_id in self._seen or not self._bridge.tracker.is_live_response(response_id):
            return
        self._seen.add(call_id)
        self._call_ids.append(call_id)
        if self.state is Hangup.NONE:
            self.state = Hangup.REQUESTED
            logger.info("model asked to end the call")
        tracker = self._bridge.tracker
        self._bridge.recorder.log(
            "end_call_requested", now, tracker.playout_status(now), call_id=call_id
        )

    def response_done(self, now: float) -> None:
        if self.state is Hangup.REQUESTED and not self._bridge.generating:
            self.start(now)

    def start(self, now: float, end_reason: str = EndReason.AGENT_HANGUP) -> None:
        bridge = self._bridge
        tracker = bridge.tracker
        # Nothing more will be played than what is here now: all of it may go out.
        tracker.close_all(now)
        bridge.generating.clear()
        status = tracker.drain_status(now)
        snapshot = tracker.snapshot(now)
        self.state = Hangup.DRAINING
        self._end_reason = end_reason
        self._started_at = now
        self._expected_ms = status.expected_wait_ms
        # However the evidence behaves, the call ends: the expected wait, the
        # safety margin, and as much again.
        self.hard_deadline = now + 2 * (status.safety_wait_ms + status.expected_wait_ms) / 1000 + 1
        logger.info(
            "[AUDIO DRAIN] waiting %dms (pending_ms=%d unplayed_ms=%d)",
            status.expected_wait_ms,
            snapshot.pending_ms,
            snapshot.unplayed_ms,
        )
        bridge.recorder.log(
            "drain_started",
            now,
            tracker.playout_status(now),
            expected_wait_ms=status.expected_wait_ms,
            pending_ms=snapshot.pending_ms,
            unplayed_ms=snapshot.unplayed_ms,
            end_reason=end_reason,
        )
        bridge.pacer.wake()

    def cancel(self, now: float, reason: str) -> None:
        """The caller spoke over the goodbye: the conversation goes on."""
        if self.state is Hangup.NONE:
            return
        logger.info("hangup cancelled: %s", reason)
        self.state = Hangup.NONE
        self.hard_deadline = None
        self._bridge.recorder.log("hangup_cancelled", now, reason=reason)
        # Tell the model its end_call did not happen, so its memory matches the call.
        for call_id in self._call_ids:
            self._bridge.queue_model(
                rt.function_call_output(call_id, {"ended": False, "reason": reason})
            )
        self._call_ids.clear()

    def finished(self, now: float) -> bool:
        """While draining: once the last audio was heard, record it and end the call."""
        if self.state is not Hangup.DRAINING:
            return False
        tracker = self._bridge.tracker
        status = tracker.drain_status(now)
        timed_out = self.hard_deadline is not None and now >= self.hard_deadline
        if not (status.done or timed_out):
            return False
        if timed_out and not status.done:
            logger.warning("drain gave up waiting: %s", status)
        actual_ms = round((now - self._started_at) * 1000)
        # An echoed final mark is Twilio's word that everything played.
        cut_off_ms = 0 if status.final_mark_echoed else tracker.playout_remaining_ms(now)
        logger.info(
            "[AUDIO DRAIN] done: expected_ms=%d actual_ms=%d final_mark_echoed=%s",
            self._expected_ms,
            actual_ms,
            status.final_mark_echoed,
        )
        self._bridge.recorder.log(
            "drain_completed",
            now,
            tracker.playout_status(now),
            expected_wait_ms=self._expected_ms,
            actual_wait_ms=actual_ms,
            final_mark_echoed=status.final_mark_echoed,
            cut_off_ms=cut_off_ms,
        )
        self._bridge.request_end(self._end_reason)
        return True
