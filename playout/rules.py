"""The speaking rules, wake-up times and drain condition, as pure functions of tracker state."""

from __future__ import annotations

from dataclasses import dataclass

from playout.config import PlayoutConfig
from playout.reports import SpeakingReason


@dataclass(frozen=True, slots=True)
class Timing:
    """The config's durations in seconds, computed once (the rules run 50 times a second)."""

    grace_s: float
    lead_s: float
    refill_s: float
    recent_s: float
    echo_wait_s: float
    drain_margin_s: float

    @classmethod
    def of(cls, config: PlayoutConfig) -> Timing:
        return cls(
            grace_s=config.grace_ms / 1000,
            lead_s=config.lead_ms / 1000,
            refill_s=config.refill_ms / 1000,
            recent_s=config.recent_output_ms / 1000,
            echo_wait_s=config.echo_wait_ms / 1000,
            drain_margin_s=config.drain_margin_ms / 1000,
        )


def speaking_reason(
    timing: Timing,
    now: float,
    deadline: float | None,
    outstanding_marks: int,
    pending_bytes: int,
    last_audio_at: float | None,
) -> SpeakingReason | None:
    """Which rule says the AI is being heard at `now`, in priority order; None if none does.

    1. The playout truth: now < deadline + grace; or live marks still
       unechoed and now < deadline + grace + echo_wait (Twilio has not
       confirmed the end; bounded, so a lost echo cannot keep it speaking).
    2. Audio held locally and model audio received less than grace ago.
    3. Fallback: model audio received less than recent_output_ms ago (the
       moment between a delta's arrival and its first frame going out).
    """
    if deadline is not None:
        heard_until = deadline + timing.grace_s
        if now < heard_until:
            return SpeakingReason.PLAYOUT
        if outstanding_marks and now < heard_until + timing.echo_wait_s:
            return SpeakingReason.AWAITING_ECHO
    if last_audio_at is not None:
        age = now - last_audio_at
        if pending_bytes and age < timing.grace_s:
            return SpeakingReason.PENDING_AUDIO
        if age < timing.recent_s:
            return SpeakingReason.RECENT_OUTPUT
    return None


def next_wakeup(
    timing: Timing,
    now: float,
    next_send_at: float | None,
    deadline: float | None,
    outstanding_marks: int,
    pending_bytes: int,
    last_audio_at: float | None,
) -> float | None:
    """The earliest time after `now` when the tracker's answers change, or `now` if a frame is due.

    Candidates: the next frame's send time; deadline + grace (speaking turns
    false); the echo-wait bound; the drain safety deadline; the ends of the
    pending-audio and recent-output rules. Past candidates are dropped so the
    shell never spins on a time already handled.
    """
    if next_send_at is not None and next_send_at <= now:
        return now
    candidates: list[float] = []
    if next_send_at is not None:
        candidates.append(next_send_at)
    if deadline is not None:
        candidates.append(deadline + timing.grace_s)
        candidates.append(deadline + timing.drain_margin_s)
        if outstanding_marks:
            candidates.append(deadline + timing.grace_s + timing.echo_wait_s)
    if last_audio_at is not None:
        candidates.append(last_audio_at + timing.recent_s)
        if pending_bytes:
            candidates.append(last_audio_at + timing.grace_s)
    future = [t for t in candidates if t > now]
    return min(future) if future else None


def drain_done(
    now: float,
    pending_bytes: int,
    open_items: int,
    final_mark_echoed: bool,
    safety_deadline: float | None,
) -> bool:
    """Whether a hangup may go ahead: nothing left to send, and the end heard or waited out."""
    if pending_bytes or open_items:
        return False
    return final_mark_echoed or (safety_deadline is not None and now >= safety_deadline)
