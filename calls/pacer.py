"""Model audio out to Twilio: the pacing loop, and the playout intervals it records."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from calls.protocol.twilio import mark_message, media_message
from playout import AudioFrame, MarkEcho

if TYPE_CHECKING:
    from calls.bridge import CallBridge


class Pacer:
    """Sends what `PlayoutTracker.poll` releases, waking at `next_deadline()` or when poked.

    It also records the call's playout intervals (`playout_started` at a
    response's first frame, `playout_ended` when the caller stops hearing it)
    and the mark-echo statistics that measure the playout estimate.
    """

    def __init__(self, bridge: CallBridge) -> None:
        self._bridge = bridge
        self._wake: asyncio.Future[None] | None = None
        # A wake while the loop is busy sending is kept, not lost.
        self._poked = False
        self.audio_sent_bytes = 0
        self._audible: dict[str, int] = {}  # response_id -> bytes sent this interval
        self._mark_errors: dict[str, tuple[list[int], list[int]]] = {}

    def wake(self) -> None:
        self._poked = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self) -> None:
        bridge = self._bridge
        tracker = bridge.tracker
        stream_sid = bridge.call.stream_sid
        while True:
            now = bridge.clock()
            for out in tracker.poll(now):
                # A barge-in may have cancelled this generation while we awaited a send.
                if not tracker.is_live(out.generation):
                    continue
                if isinstance(out, AudioFrame):
                    self._note_audible(out, now)
                    await bridge.send_twilio(media_message(stream_sid, out.payload))
                    self.audio_sent_bytes += len(out.payload)
                else:
                    await bridge.send_twilio(mark_message(stream_sid, out.name))
            now = bridge.clock()
            self._note_playout_end(now)
            if bridge.goodbye.finished(now):
                return
            bridge.pulse()
            wake_at = tracker.next_deadline()
            give_up = bridge.goodbye.hard_deadline
            if give_up is not None:
                wake_at = give_up if wake_at is None else min(wake_at, give_up)
            await self._sleep_until(wake_at)

    async def _sleep_until(self, deadline: float | None) -> None:
        if self._poked:
            self._poked = False
            return
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        handle = None
        if deadline is not None:
            handle = loop.call_later(max(0.0, deadline - self._bridge.clock()), self.wake)
        try:
            await self._wake
        finally:
            if handle is not None:
                handle.cancel()
            self._wake = None
            self._poked = False

    def note_echo(self, echo: MarkEcho) -> None:
        if echo.accepted and echo.response_id:
            errors, trips = self._mark_errors.setdefault(echo.response_id, ([], []))
            errors.append(echo.estimate_error_ms)
            trips.append(echo.round_trip_ms)

    def _note_audible(self, frame: AudioFrame, now: float) -> None:
        sent = self._audible.get(frame.response_id)
        if sent is None:
            self._bridge.recorder.log(
                "playout_started",
                now,
                self._bridge.tracker.playout_status(now),
                response_id=frame.response_id,
                item_id=frame.item_id,
            )
            sent = 0
        self._audible[frame.response_id] = sent + len(frame.payload)

    def _note_playout_end(self, now: float) -> None:
        tracker = self._bridge.tracker
        if not self._audible or tracker.is_speaking(now):
            return
        until_end = tracker.deadline_offset_ms(now) or 0
        self._close_intervals(
            now, self._bridge.recorder.offset_ms(now) + until_end, interrupted=False
        )

    def interrupted(self, now: float) -> None:
        """A barge-in cut the audio: the playout intervals end now."""
        self._close_intervals(now, self._bridge.recorder.offset_ms(now), interrupted=True)

    def _close_intervals(self, now: float, end_offset_ms: int, interrupted: bool) -> None:
        recorder = self._bridge.recorder
        status = self._bridge.tracker.playout_status(now)
        for response_id, sent in self._audible.items():
            recorder.log(
                "playout_ended",
                now,
                status,
                response_id=response_id,
                audio_end_offset_ms=end_offset_ms,
                audio_ms=sent // 8,
                interrupted=interrupted,
            )
        self._audible.clear()
        self.flush_mark_stats(now)

    def flush_mark_stats(self, now: float) -> None:
        for response_id, (errors, trips) in self._mark_errors.items():
            self._bridge.recorder.log(
                "mark_stats",
                now,
                response_id=response_id,
                count=len(errors),
                estimate_error_ms=errors,
                round_trip_ms=trips,
            )
        self._mark_errors.clear()
