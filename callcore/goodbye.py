"""Hanging up with a drain: the goodbye plays to its end, then the call ends."""

from __future__ import annotations

import logging

from callcore.outputs import Log, Output, Record, ToModel
from callcore.protocol import realtime as rt
from callcore.records import EndReason, RecordKind
from playout import PlayoutTracker


class Goodbye:
    """The end of a call the bridge decides: the model's `end_call`, or the model lost.

    The drain waits until `PlayoutTracker.drain_status` says the last audio
    was heard (its final mark echoed, or the safety deadline passed), so the
    call ends right after the goodbye, not before and not seconds later.
    Each method returns what to send and record; `finished` says when to end.
    Whether a goodbye is asked for or draining is the call's phase
    (`callcore.lifecycle`); this keeps what the drain needs.
    """

    def __init__(self) -> None:
        # Every end_call seen, never forgotten: a response.done that repeats a
        # call already cancelled by a barge-in must not hang up after all.
        self._seen: set[str] = set()
        self._call_ids: list[str] = []
        self._started_at = 0.0
        self._expected_ms = 0
        self._end_reason = EndReason.AGENT_HANGUP
        self.hard_deadline: float | None = None

    def requested(self, call_id: str, live: bool, now: float, status: str) -> list[Output]:
        """The model called end_call (taken once per call_id, from either event): its
        record, or nothing when it is void.

        An end_call from a response the caller already interrupted (`live`
        False) is void.
        """
        if call_id in self._seen or not live:
            return []
        self._seen.add(call_id)
        self._call_ids.append(call_id)
        return [Record(RecordKind.END_CALL_REQUESTED, now, status, {"call_id": call_id})]

    def start(
        self, tracker: PlayoutTracker, now: float, end_reason: EndReason = EndReason.AGENT_HANGUP
    ) -> list[Output]:
        # Nothing more will be played than what is here now: all of it may go out.
        tracker.close_all(now)
        status = tracker.drain_status(now)
        snapshot = tracker.snapshot(now)
        self._end_reason = end_reason
        self._started_at = now
        self._expected_ms = status.expected_wait_ms
        # However the evidence behaves, the call ends: the expected wait, the
        # safety margin, and as much again.
        self.hard_deadline = now + 2 * (status.safety_wait_ms + status.expected_wait_ms) / 1000 + 1
        return [
            Log(
                logging.INFO,
                "[AUDIO DRAIN] waiting %dms (pending_ms=%d unplayed_ms=%d)",
                (status.expected_wait_ms, snapshot.pending_ms, snapshot.unplayed_ms),
            ),
            Record(
                RecordKind.DRAIN_STARTED,
                now,
                snapshot.playout_status,
                {
                    "expected_wait_ms": status.expected_wait_ms,
                    "pending_ms": snapshot.pending_ms,
                    "unplayed_ms": snapshot.unplayed_ms,
                    "end_reason": str(end_reason),
                },
            ),
        ]

    def cancel(self, now: float, reason: str) -> list[Output]:
        """The caller spoke over the goodbye: the conversation goes on."""
        self.hard_deadline = None
        out: list[Output] = [
            Log(logging.INFO, "hangup cancelled: %s", (reason,)),
            Record(RecordKind.HANGUP_CANCELLED, now, details={"reason": reason}),
        ]
        # Tell the model its end_call did not happen, so its memory matches the call.
        out += [
            ToModel(rt.function_call_output(call_id, {"ended": False, "reason": reason}))
            for call_id in self._call_ids
        ]
        self._call_ids.clear()
        return out

    def finished(
        self, tracker: PlayoutTracker, now: float
    ) -> tuple[list[Output], EndReason | None]:
        """While draining: once the last audio was heard, its records and the end reason."""
        status = tracker.drain_status(now)
        timed_out = self.hard_deadline is not None and now >= self.hard_deadline
        if not (status.done or timed_out):
            return [], None
        out: list[Output] = []
        if timed_out and not status.done:
            out.append(Log(logging.WARNING, "drain gave up waiting: %s", (status,)))
        actual_ms = round((now - self._started_at) * 1000)
        # An echoed final mark is Twilio's word that everything played.
        cut_off_ms = 0 if status.final_mark_echoed else tracker.playout_remaining_ms(now)
        out.append(
            Log(
                logging.INFO,
                "[AUDIO DRAIN] done: expected_ms=%d actual_ms=%d final_mark_echoed=%s",
                (self._expected_ms, actual_ms, status.final_mark_echoed),
            )
        )
        out.append(
            Record(
                RecordKind.DRAIN_COMPLETED,
                now,
                tracker.playout_status(now),
                {
                    "expected_wait_ms": self._expected_ms,
                    "actual_wait_ms": actual_ms,
                    "final_mark_echoed": status.final_mark_echoed,
                    "cut_off_ms": cut_off_ms,
                },
            )
        )
        self.hard_deadline = None
        return out, self._end_reason
