"""Barge-in: the caller's speech start, judged against what the caller hears, with evidence."""

from __future__ import annotations

import logging
from collections.abc import Callable

from callcore.input_clock import InputClock
from callcore.outputs import BargeIn, Log, Output, Record
from callcore.protocol.realtime import SpeechStarted
from callcore.records import BargeInFigures, ItemHeard, RecordKind
from callcore.turns import Decided
from playout import CancelOutcome, PlayoutSnapshot, PlayoutTracker

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


def heard_at(tracker: PlayoutTracker, moment: float | None) -> int | None:
    """What the caller had heard, at `moment`, of the item playing then (None if none).

    Read before a cancel changes the estimate.
    """
    if moment is None:
        return None
    item = tracker.playing_item(moment)
    return None if item is None else tracker.heard_ms(item, moment)


def barge_in(
    clear: str,
    outcome: CancelOutcome,
    *,
    at: float,
    onset: float | None,
    heard_at_onset_ms: int | None,
    response_cancelled: bool,
    heard_text: str,
    cut_text: str,
    items: tuple[ItemHeard, ...],
    frame_ms: int,
    offset_ms: OffsetMs,
    stopped: PlayoutSnapshot | None = None,
) -> BargeIn:
    """The barge-in, from what the tracker's cancel did (its evidence was taken before).

    `stopped`: the evidence of the pause that had already stopped what the caller
    heard (the answer paused while their sound was judged): what they were kept
    from hearing is what was left then.
    """
    evidence = outcome.evidence if stopped is None else stopped
    truncate = outcome.truncate
    return BargeIn(
        clear=clear,
        at=at,
        playout_status=evidence.playout_status,
        figures=BargeInFigures(
            response_id=outcome.response_id or "",
            item_id=truncate.item_id if truncate else "",
            playout_remaining_ms=evidence.playout_remaining_ms,
            pending_ms=evidence.pending_ms,
            unplayed_ms=evidence.unplayed_ms,
            audio_end_ms=truncate.audio_end_ms if truncate else None,
            response_cancelled=response_cancelled,
            speech_onset_offset_ms=None if onset is None else offset_ms(onset),
            heard_at_onset_ms=heard_at_onset_ms,
            heard_text=heard_text,
            cut_text=cut_text,
        ),
        evidence={
            "speaking_reason": evidence.speaking_reason,
            "link_rtt_ms": evidence.link_rtt_ms,
            "link_jitter_ms": evidence.link_jitter_ms,
        },
        deleted_item_ids=tuple(outcome.delete_item_ids),
        items=items,
        generation=outcome.generation,
        pending_frames=evidence.pending_frames,
        unplayed_frames=evidence.unplayed_ms // frame_ms,
    )


def verdict_details(decided: Decided, offset_ms: OffsetMs) -> dict[str, object]:
    """A turn verdict's record: what it was, what settled it, when, and its evidence."""
    return {
        "verdict": str(decided.verdict),
        "decided_by": str(decided.decided_by),
        "decision_ms": decided.decision_ms,
        "speech_onset_offset_ms": offset_ms(decided.onset),
        "item_ids": list(decided.item_ids),
        "voice_ms": decided.voice_ms,
        "sounds": decided.sounds,
        "voice_frames": decided.voice_frames,
        "echo_frames": decided.echo_frames,
        "words": decided.words,
        "paused": decided.paused,
        "interruptible": decided.interruptible,
    }
