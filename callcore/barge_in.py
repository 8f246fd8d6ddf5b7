"""Barge-in: the caller's speech start, judged against what the caller hears, with evidence."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from callcore.input_clock import InputClock
from callcore.outputs import BargeInRecord, Log, Output, Record
from callcore.protocol.realtime import SpeechStarted
from callcore.records import RecordKind
from playout import CancelOutcome, PlayoutTracker

OffsetMs = Callable[[float], int]


def speech_onset(
    event: SpeechStarted, prefix_padding_ms: int, clock: InputClock, rtt_s: float
) -> float | None:
    """When the caller's speech really began, on the tracker's clock (None if unknown).

    `audio_start_ms` includes the VAD's prefix padding, so the onset is that
    much later; the input clock maps input audio back to when it reached us.
    The tracker's clock is that of our sends (audio sent at `t` plays at the
    phone one way later), and the caller's audio reached us one way after it
    was spoken: the onset is a round trip before its audio's arrival.
    """
    if event.audio_start_ms is None:
        return None
    arrival = clock.arrival_of(event.audio_start_ms + prefix_padding_ms)
    return None if arrival is None else arrival - rtt_s


def judge_silent_speech(
    tracker: PlayoutTracker, onset: float | None, now: float, offset_ms: OffsetMs
) -> list[Output]:
    """The caller spoke while the AI is judged silent: the evidence for that judgement."""
    snapshot = tracker.snapshot(now)
    until_end = snapshot.deadline_offset_ms
    # The VAD reports speech late: did it really begin after the AI stopped?
    onset_until_end = tracker.deadline_offset_ms(onset) if onset is not None else None
    return [
        Log(
            logging.INFO,
            "[USER_SPEECH] AI silent - playout_status=%s tx_q=%d",
            (snapshot.playout_status, snapshot.pending_frames),
        ),
        Record(
            RecordKind.USER_SPEECH_AI_SILENT,
            now,
            snapshot.playout_status,
            {
                "ms_since_playout_end": None if until_end is None else max(0, -until_end),
                "onset_ms_after_playout_end": (
                    None if onset_until_end is None else -onset_until_end
                ),
                "speech_onset_offset_ms": None if onset is None else offset_ms(onset),
                "pending_frames": snapshot.pending_frames,
            },
        ),
    ]


class BargeIn:
    """One barge-in and its evidence.

    What the caller had heard where their speech really began is read before
    the cancel changes the estimate (`before_cancel`); the playout evidence is
    the snapshot the tracker's cancel took (`cancelled`); `records`, once the
    clear is out, gives the log line and the rows.
    """

    def __init__(
        self,
        onset: float | None,
        heard_at_onset_ms: int | None,
        response_cancelled: bool,
        at: float,
        frame_ms: int,
        offset_ms: OffsetMs,
    ) -> None:
        self.onset = onset
        self.heard_at_onset_ms = heard_at_onset_ms
        self.response_cancelled = response_cancelled
        self.at = at
        self._frame_ms = frame_ms
        self._offset_ms = offset_ms
        self.outcome: CancelOutcome | None = None
        self.heard_text = ""
        self.cut_text = ""

    @classmethod
    def before_cancel(
        cls, tracker: PlayoutTracker, onset: float | None, now: float, offset_ms: OffsetMs
    ) -> BargeIn:
        heard_at_onset = None
        if onset is not None:
            item = tracker.playing_item(onset)
            if item is not None:
                heard_at_onset = tracker.heard_ms(item, onset)
        return cls(
            onset, heard_at_onset, tracker.generating(), now, tracker.config.frame_ms, offset_ms
        )

    def cancelled(self, outcome: CancelOutcome, heard_text: str, cut_text: str) -> None:
        """What the cancel did, and the answer's words the caller heard and did not."""
        self.outcome = outcome
        self.heard_text, self.cut_text = heard_text, cut_text

    def records(self, clear_sent_at: float) -> list[Output]:
        """The barge-in's log line and rows; reaction is from the speech event to the clear."""
        outcome = self.outcome
        assert outcome is not None, "records() before cancelled()"
        evidence = outcome.evidence
        truncate = outcome.truncate
        reaction_ms = (clear_sent_at - self.at) * 1000
        figures: dict[str, Any] = {
            "response_id": outcome.response_id or "",
            "item_id": truncate.item_id if truncate else "",
            "playout_remaining_ms": evidence.playout_remaining_ms,
            "pending_ms": evidence.pending_ms,
            "unplayed_ms": evidence.unplayed_ms,
            "reaction_ms": round(reaction_ms, 3),
            "audio_end_ms": truncate.audio_end_ms if truncate else None,
            "response_cancelled": self.response_cancelled,
            "speech_onset_offset_ms": None if self.onset is None else self._offset_ms(self.onset),
            "heard_at_onset_ms": self.heard_at_onset_ms,
            "heard_text": self.heard_text,
            "cut_text": self.cut_text,
        }
        extra = {
            "speaking_reason": evidence.speaking_reason,
            "link_rtt_ms": evidence.link_rtt_ms,
            "link_jitter_ms": evidence.link_jitter_ms,
        }
        return [
            Log(
                logging.INFO,
                "[EARLY_BARGE_IN] Triggered on speech START! playout_remaining_ms=%d "
                "realtime_q=%d tx_q=%d reaction_ms=%.2f reason=%s audio_end_ms=%s",
                (
                    evidence.playout_remaining_ms,
                    evidence.pending_frames,
                    evidence.unplayed_ms // self._frame_ms,
                    reaction_ms,
                    evidence.speaking_reason,
                    figures["audio_end_ms"],
                ),
            ),
            Record(
                RecordKind.BARGE_IN,
                self.at,
                evidence.playout_status,
                {
                    **figures,
                    **extra,
                    "deleted_item_ids": list(outcome.delete_item_ids),
                    "generation": outcome.generation,
                },
            ),
            BargeInRecord(self.at, {**figures, "details": extra}),
        ]
