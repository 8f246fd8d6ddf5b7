"""The speaking rules, wake-up times and drain condition, as pure functions of tracker state."""

from __future__ import annotations

from dataclasses import dataclass

from playout.config import BYTES_PER_MS, PlayoutConfig
from playout.reports import SpeakingReason


@dataclass(frozen=True, slots=True)
class Timing:
    """The config's durations in seconds, computed once (the rules run 50 times a second)."""

    grace_s: float
    lead_s: float
    refill_s: float
    start_hold_s: float
    start_fill_bytes: int
    held_s: float
    recent_s: float
    echo_wait_s: float
    drain_margin_s: float
    history_s: float

    @classmethod
    def of(cls, config: PlayoutConfig) -> Timing:
        return cls(
            grace_s=config.grace_ms / 1000,
            lead_s=config.lead_ms / 1000,
            refill_s=config.refill_ms / 1000,
            start_hold_s=config.start_hold_ms / 1000,
            start_fill_bytes=config.start_fill_ms * BYTES_PER_MS,
            held_s=config.held_audio_ms / 1000,
            recent_s=config.recent_output_ms / 1000,
            echo_wait_s=config.echo_wait_ms / 1000,
            drain_margin_s=config.drain_margin_ms / 1000,
            history_s=config.history_ms / 1000,
        )


@dataclass(frozen=True, slots=True)
class Slack:
    """How far past the deadline the caller may still hear, and the final echo come.

    The deadline is when audio sent *now* would have played (our clock, as
    Twilio's player lags it by one way). The caller hears up to one way
    later; the final mark's echo comes a round trip later. Each has the grace
    and twice the link's jitter on top.
    """

    heard_s: float
    echo_s: float

    @classmethod
    def of(cls, timing: Timing, one_way_s: float, rtt_s: float, jitter_s: float) -> Slack:
        margin = timing.grace_s + 2 * jitter_s
        return cls(heard_s=one_way_s + margin, echo_s=rtt_s + margin)


def speaking_reason(
    timing: Timing,
    slack: Slack,
    now: float,
    deadline: float | None,
    outstanding_marks: int,
    pending_bytes: int,
    last_audio_at: float | None,
    held_back: bool = False,
) -> SpeakingReason | None:
    """Which rule says the AI is being heard at `now`, in priority order; None if none does.

    1. The playout truth: now < deadline + slack.heard (the caller is still
       hearing it); then `held_back` (a hold or pause keeps the answer's
       audio back: the AI's turn is suspended, not over); then live marks
       still unechoed and now < deadline + slack.echo + echo_wait (Twilio has
       not confirmed the end; bounded, so a lost echo cannot keep it speaking).
    2. Audio held locally and model audio received less than held_audio_ms ago.
    3. Fallback: model audio received less than recent_output_ms ago (the
       moment between a delta's arrival and its first frame going out).
    """
    if deadline is not None and now < deadline + slack.heard_s:
        return SpeakingReason.PLAYOUT
    if held_back:
        return SpeakingReason.HELD
    if (
        deadline is not None
        and outstanding_marks
        and now < deadline + slack.echo_s + timing.echo_wait_s
    ):
        return SpeakingReason.AWAITING_ECHO
    if last_audio_at is not None:
        age = now - last_audio_at
        if pending_bytes and age < timing.held_s:
            return SpeakingReason.PENDING_AUDIO
        if age < timing.recent_s:
            return SpeakingReason.RECENT_OUTPUT
    return None


def next_wakeup(
    timing: Timing,
    slack: Slack,
    now: float,
    next_send_at: float | None,
    deadline: float | None,
    outstanding_marks: int,
    pending_bytes: int,
    last_audio_at: float | None,
) -> float | None:
    """The earliest time after `now` when the tracker's answers change, or `now` if a frame is due.

    Candidates: the next frame's send time; deadline + slack.heard (speaking
    turns false); the echo-wait bound; the drain safety deadline; the ends of
    the held-audio and recent-output rules. Past candidates are dropped so the
    shell never spins on a time already handled.
    """
    if next_send_at is not None and next_send_at <= now:
        return now
    candidates: list[float] = []
    if next_send_at is not None:
        candidates.append(next_send_at)
    if deadline is not None:
        candidates.append(deadline + slack.heard_s)
        candidates.append(deadline + slack.echo_s + timing.drain_margin_s)
        if outstanding_marks:
            candidates.append(deadline + slack.echo_s + timing.echo_wait_s)
    if last_audio_at is not None:
        candidates.append(last_audio_at + timing.recent_s)
        if pending_bytes:
            candidates.append(last_audio_at + timing.held_s)
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
