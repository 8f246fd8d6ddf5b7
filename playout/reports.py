"""Frozen answers the tracker gives: cancel and pause outcomes, drain status, echo verdicts,
snapshots."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from playout.outbound import MarkOut


class SpeakingReason(enum.StrEnum):
    """Which rule of `is_speaking` fired, in priority order."""

    PLAYOUT = "playout"  # now < deadline + one way + grace + 2 x jitter
    HELD = "held"  # a hold or pause keeps the answer's audio back: the AI's turn goes on
    AWAITING_ECHO = "awaiting_echo"  # marks unechoed, within the echo-wait bound
    PENDING_AUDIO = "pending_audio"  # audio held locally, model audio within held_audio_ms
    RECENT_OUTPUT = "recent_output"  # legacy fallback: model audio within recent_output_ms


class EchoResult(enum.StrEnum):
    """Verdict on one mark echo from Twilio."""

    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # not ours, or already echoed (or implied by a later echo)
    CLEARED_BY_CANCEL = "cleared_by_cancel"  # returned by `clear`: not evidence of playback
    CLEARED_BY_PAUSE = "cleared_by_pause"  # returned by a pause's `clear`: not evidence either
    STALE_GENERATION = "stale_generation"  # ours, from a cancelled generation


class HoldState(enum.StrEnum):
    """Whether pacing feeds Twilio (`PlayoutTracker.hold`, `pause`, `resume`).

    FLOWING -hold-> HELD -pause-> PAUSED; `pause` also from FLOWING; `resume`
    and `cancel` go back to FLOWING from either; `hold` while PAUSED stays PAUSED.
    """

    FLOWING = "flowing"  # frames go out as paced
    HELD = "held"  # no new frames; what Twilio already holds plays on
    PAUSED = "paused"  # no new frames; Twilio cleared, the unheard audio back in pending


@dataclass(frozen=True, slots=True)
class Truncation:
    """`conversation.item.truncate` arguments: the caller heard `audio_end_ms` (> 0) of it."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What a cancel (Twilio `clear`) did, and what to tell the model.

    - `truncate`: the item the caller was hearing, cut to what was heard;
      None when no unfinished item had been heard for at least 1 ms.
    - `delete_item_ids`: items with audio received or sent but 0 ms heard
      (none of it was said: it leaves the model's memory), in first-audio order.
    - `kept_item_ids`: items of the cut answers heard whole (complete, all of
      their audio played), in first-audio order: nothing to tell the model of
      them. Earlier answers of the generation, heard whole before the cut
      one began, are not among them.
    - `response_id`: the response of the truncated item, else the latest
      response of the cancelled generation, else None.
    - `cancelled_response_ids`: every response of the cancelled generation.
    - `generation`: the new, live generation; `cancelled_generation` the dead one.
    - `evidence`: the tracker's snapshot just before the cancel (what was
      playing, held locally and dropped, sent and unplayed, and why the AI
      was judged speaking): the one record of it.
    - `marks_cleared`: outstanding marks whose echoes are now ignored.
    """

    truncate: Truncation | None
    delete_item_ids: tuple[str, ...]
    kept_item_ids: tuple[str, ...]
    response_id: str | None
    cancelled_response_ids: tuple[str, ...]
    generation: int
    cancelled_generation: int
    evidence: PlayoutSnapshot
    marks_cleared: int


@dataclass(frozen=True, slots=True)
class PauseOutcome:
    """What a pause (Twilio `clear`, the same answer to go on) did.

    - `item_id`, `heard_ms`: the item the caller was hearing when the clear
      landed, and how much of it was heard (the resume goes on from there);
      None and 0 when nothing of the live generation had been heard.
    - `requeued_ms`: audio sent but not heard, back at the front of pending.
    - `epoch`: the new send epoch; frames and marks handed out before it are
      stale (see `PlayoutTracker.pause`).
    - `marks_cleared`: outstanding marks whose echoes are now ignored.
    - `evidence`: the tracker's snapshot just before the pause.
    - `closing_mark`: a mark to send just before the clear, when audio sent
      after the last mark still plays: the clear returns it, or it echoes as
      the player runs dry first; either way its echo dates when the caller
      stopped hearing, and the cut moves there (`PlayoutTracker.recut_bytes`).
    """

    item_id: str | None
    heard_ms: int
    requeued_ms: int
    epoch: int
    marks_cleared: int
    evidence: PlayoutSnapshot
    closing_mark: MarkOut | None = None


@dataclass(frozen=True, slots=True)
class DrainStatus:
    """Whether the audio is all heard, for a hangup that must not cut the goodbye.

    `deadline` is when the last audio will have played (monotonic seconds,
    None if nothing was sent since start or the last cancel);
    `safety_deadline` = deadline + drain_margin_ms, the bound for when echoes
    never come. `done` = no pending audio, no item whose audio is still open
    (deltas seen, no audio_done/response_done), and either the final mark
    (at the end of everything sent) echoed or now >= safety_deadline.
    `expected_wait_ms` is until the deadline, `safety_wait_ms` until the safety
    deadline (both >= 0).
    """

    done: bool
    pending_bytes: int
    pending_ms: int
    open_items: int
    deadline: float | None
    final_mark_echoed: bool
    safety_deadline: float | None
    expected_wait_ms: int
    safety_wait_ms: int


@dataclass(frozen=True, slots=True)
class MarkEcho:
    """Verdict on a mark echo.

    For accepted echoes: `estimate_error_ms` = when the audio before the mark
    played (the echo's time less the measured round trip) minus when the
    estimate, at the time the mark was sent, said it would (positive:
    playback is behind the estimate); `round_trip_ms` = echo time minus when
    the mark was sent. Both are 0 when not accepted. `position_ms` is the
    mark's place on the sent-audio axis; `link_sample` says the echo measured
    the link.
    """

    name: str
    result: EchoResult
    generation: int | None = None
    response_id: str | None = None
    item_id: str | None = None
    position_ms: int = 0
    estimate_error_ms: int = 0
    round_trip_ms: int = 0
    link_sample: bool = False

    @property
    def accepted(self) -> bool:
        return self.result is EchoResult.ACCEPTED


@dataclass(frozen=True, slots=True)
class PlayoutSnapshot:
    """Evidence for logs, cheap to take.

    Durations in integer ms. `pending_*` is audio held locally; `unplayed_ms`
    is sent but not yet played per the heard-position estimate; `sent_ms` is
    sent since start or the last cancel (less what a pause took back).
    `deadline` is monotonic seconds (None: nothing sent since start/last
    cancel) and `deadline_offset_ms` = deadline - now; `playout_remaining_ms` is
    that (0 when past), and with `snapshot(held_back=True)` the audio a hold keeps
    back too. `next_send_at` is when
    the next frame may go out (None: nothing sendable, or held).
    `model_audio_age_ms` is since the last accepted model audio. `link_rtt_ms`
    and `link_jitter_ms` are the link estimate in use; `hold` is a `HoldState`
    value.
    """

    generation: int
    pending_frames: int
    pending_ms: int
    unplayed_ms: int
    sent_ms: int
    outstanding_marks: int
    deadline: float | None
    deadline_offset_ms: int | None
    playout_remaining_ms: int
    playout_status: str
    next_send_at: float | None
    model_audio_age_ms: int | None
    speaking_reason: str | None
    link_rtt_ms: int = 0
    link_jitter_ms: int = 0
    hold: str = HoldState.FLOWING
