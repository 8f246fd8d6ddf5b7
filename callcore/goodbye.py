"""Hanging up, or handing over to a person, with a drain: the last words play to their end first."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from callcore.outputs import Log, Output, Record, ToModel
from callcore.protocol import realtime as rt
from callcore.records import EndReason, RecordKind
from playout import PlayoutTracker


@dataclass(frozen=True, slots=True)
class Transfer:
    """Where the model handed the caller: a target's name, and the number Twilio dials."""

    target: str
    number: str


class Goodbye:
    """The end of a call the bridge decides: the model's `end_call` or transfer, or the
    model lost.

    A transfer is a goodbye whose end is `transferred`: its handoff line is
    heard in full, a barge-in calls it off, and Twilio dials the target once
    the stream closed.

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
        # The transfer asked for, while it goes on.
        self.transfer: Transfer | None = None

    def requested(
        self, call_id: str, live: bool, now: float, status: str, transfer: Transfer | None = None
    ) -> list[Output]:
        """The model called end_call, or the transfer tool (taken once per call_id, from
        either event): its record, or nothing when it is void.

        A call from a response the caller already interrupted (`live` False) is
        void; so is a second request while one goes on.
        """
        if call_id in self._seen or not live:
            return []
        self._seen.add(call_id)
        if self._call_ids:
            return []
        self._call_ids.append(call_id)
        if transfer is None:
            return [Record(RecordKind.END_CALL_REQUESTED, now, status, {"call_id": call_id})]
        self.transfer = transfer
        self._end_reason = EndReason.TRANSFERRED
        details = {"call_id": call_id, "target": transfer.target, "number": transfer.number}
        return [Record(RecordKind.TRANSFER_REQUESTED, now, status, details)]

    def start(
        self, tracker: PlayoutTracker, now: float, end_reason: EndReason | None = None
    ) -> list[Output]:
        """The last words drain; the call then ends for `end_reason` (None: as requested;
        a transfer asked for stays a transfer whatever ends the conversation)."""
        if end_reason is None or self.transfer is not None:
            end_reason = self._end_reason
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
        transfer, self.transfer = self.transfer, None
        self._end_reason = EndReason.AGENT_HANGUP
        details: dict[str, str] = {"reason": reason}
        what, result = "hangup", {"ended": False, "reason": reason}
        if transfer is not None:
            details["transfer_target"] = transfer.target
            what, result = "transfer", {"transferred": False, "reason": reason}
        out: list[Output] = [
            Log(logging.INFO, "%s cancelled: %s", (what, reason)),
            Record(RecordKind.HANGUP_CANCELLED, now, details=details),
        ]
        # Tell the model its call did not happen, so its memory matches the call.
        out += [ToModel(rt.function_call_output(call_id, result)) for call_id in self._call_ids]
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
