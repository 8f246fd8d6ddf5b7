"""Barge-in: the caller's speech start, judged against what the caller is hearing."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from calls.protocol import realtime as rt

if TYPE_CHECKING:
    from calls.bridge import CallBridge

from calls.errors import ModelGone

logger = logging.getLogger(__name__)


class BargeInHandler:
    """Acts on `input_audio_buffer.speech_started` for one call.

    The decision is the playout truth's (`PlayoutTracker.is_speaking`), which
    covers the tail still playing after the model's last delta. On a barge-in
    the Twilio `clear` is the first thing sent, in the same pass of the event
    loop as the event's arrival; evidence is computed before, records after.
    """

    def __init__(self, bridge: CallBridge) -> None:
        self._bridge = bridge

    async def on_speech_started(self, event: dict[str, Any], now: float) -> None:
        bridge = self._bridge
        tracker = bridge.tracker
        if not tracker.is_speaking(now):
            self._ai_silent(event, now)
            return

        # Evidence, before the cancel changes it: one snapshot holds all of it.
        snapshot = tracker.snapshot(now)
        playout_status = snapshot.playout_status
        remaining_ms = snapshot.playout_remaining_ms
        speaking_reason = snapshot.speaking_reason
        onset = self._speech_onset(event)
        onset_item = tracker.playing_item(onset) if onset is not None else None
        heard_at_onset = (
            tracker.heard_ms(onset_item, onset)
            if onset is not None and onset_item is not None
            else None
        )

        outcome = tracker.cancel(now)
        await bridge.send_clear()
        reaction_ms = (bridge.clock() - now) * 1000

        response_cancelled = bool(bridge.generating)
        truncate = outcome.truncate
        try:
            if response_cancelled:
                await bridge.send_model(rt.response_cancel())
            if truncate is not None:
                await bridge.send_model(rt.item_truncate(truncate.item_id, truncate.audio_end_ms))
            for item_id in outcome.delete_item_ids:
                await bridge.send_model(rt.item_delete(item_id))
        except ModelGone:
            # The caller was still cut off (the clear went out): record it all the same.
            logger.warning("Realtime connection lost during a barge-in")
        bridge.pacer.interrupted(now)
        bridge.goodbye.cancel(now, "barge_in")

        logger.info(
            "[EARLY_BARGE_IN] Triggered on speech START! playout_remaining_ms=%d "
            "realtime_q=%d tx_q=%d reaction_ms=%.2f reason=%s audio_end_ms=%s",
            remaining_ms,
            snapshot.pending_frames,
            snapshot.unplayed_ms // bridge.settings.playout.frame_ms,
            reaction_ms,
            speaking_reason,
            truncate.audio_end_ms if truncate else None,
        )
        figures: dict[str, Any] = {
            "response_id": outcome.response_id or "",
            "item_id": truncate.item_id if truncate else "",
            "playout_remaining_ms": remaining_ms,
            "pending_ms": snapshot.pending_ms,
            "unplayed_ms": snapshot.unplayed_ms,
            "reaction_ms": round(reaction_ms, 3),
            "audio_end_ms": truncate.audio_end_ms if truncate else None,
            "response_cancelled": response_cancelled,
            "speech_onset_offset_ms": (
                bridge.recorder.offset_ms(onset) if onset is not None else None
            ),
            "heard_at_onset_ms": heard_at_onset,
        }
        bridge.recorder.log(
            "barge_in",
            now,
            playout_status,
            **figures,
            deleted_item_ids=list(outcome.delete_item_ids),
            speaking_reason=speaking_reason,
            generation=outcome.generation,
        )
        bridge.recorder.barge_in(now, **figures, details={"speaking_reason": speaking_reason})

    def _ai_silent(self, event: dict[str, Any], now: float) -> None:
        bridge = self._bridge
        tracker = bridge.tracker
        snapshot = tracker.snapshot(now)
        playout_status = snapshot.playout_status
        logger.info(
            "[USER_SPEECH] AI silent - playout_status=%s tx_q=%d",
            playout_status,
            snapshot.pending_frames,
        )
        until_end = snapshot.deadline_offset_ms
        onset = self._speech_onset(event)
        # The VAD reports speech late: did it really begin after the AI stopped?
        onset_until_end = tracker.deadline_offset_ms(onset) if onset is not None else None
        bridge.recorder.log(
            "user_speech_ai_silent",
            now,
            playout_status,
            ms_since_playout_end=None if until_end is None else max(0, -until_end),
            onset_ms_after_playout_end=None if onset_until_end is None else -onset_until_end,
            speech_onset_offset_ms=None if onset is None else bridge.recorder.offset_ms(onset),
            pending_frames=snapshot.pending_frames,
        )

    def _speech_onset(self, event: dict[str, Any]) -> float | None:
        """Our clock's time of the caller's real speech onset.

        `audio_start_ms` includes the VAD's prefix padding, so the onset is
        that much later; the input clock maps input audio to arrival time.
        """
        audio_start_ms = event.get("audio_start_ms")
        if not isinstance(audio_start_ms, int):
            return None
        onset_ms = audio_start_ms + self._bridge.settings.session.prefix_padding_ms
        return self._bridge.input_clock.arrival_of(onset_ms)
