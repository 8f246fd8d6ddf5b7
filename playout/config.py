"""Playout configuration: the tunable durations, validated once at construction."""

from __future__ import annotations

from dataclasses import dataclass, fields

#: G.711 mu-law at 8 kHz: one byte per sample, so 8 bytes per millisecond.
BYTES_PER_MS = 8
BYTES_PER_SECOND = BYTES_PER_MS * 1000


@dataclass(frozen=True, slots=True)
class PlayoutConfig:
    """Durations (all integer milliseconds) that shape pacing and the speaking truth.

    - `frame_ms`: size of the frames sent to Twilio (20 ms = 160 bytes).
    - `grace_ms`: margin past the caller's end of playout (the estimate moved
      by the measured link: one way, plus twice its jitter) for Twilio's own
      buffering.
    - `lead_ms`: most unplayed audio Twilio may hold, per the estimate; must be
      at least `frame_ms`, or pacing could not send a frame before the
      previous one finished and playback would have gaps.
    - `refill_ms`: pacing tops Twilio up to `lead_ms` once it holds no more than
      `lead_ms - refill_ms`: frames go out several at a time, one wake-up per
      `refill_ms` instead of one per frame. Between `frame_ms` (a frame per
      wake-up) and `lead_ms`.
    - `start_hold_ms`, `start_fill_ms`: a run (audio into a player that has run
      dry, such as an answer's first words) starts once `start_fill_ms` of it
      is held here, or its first audio has waited `start_hold_ms`, or the item
      is complete. The model sends an answer faster than real time but in
      uneven deltas: a short first delta sent on at once can play out before
      the next arrives, and the caller hears a gap. 0 and 0: no hold.
    - `mark_interval_ms`: a mark follows at least every this much sent audio.
    - `held_audio_ms`: audio held here with model audio this recent means speaking.
    - `recent_output_ms`: the legacy fallback: model audio this recent means speaking.
    - `echo_wait_ms`: how long past the final echo's due time unechoed marks
      keep the AI speaking (bounds the effect of a lost echo).
    - `drain_margin_ms`: how long a hangup waits past the final echo's due time.
    - `link_rtt_prior_ms`, `link_jitter_prior_ms`: the round trip to Twilio's
      player and its jitter, assumed until the call has measured them.
    - `history_ms`: how far back `heard_audio` can say what the caller heard
      (sent audio is kept at least this long after it played).

    Raises `ValueError` on a value that is not an int, is negative, or breaks
    the relations above.
    """

    frame_ms: int = 20
    grace_ms: int = 40
    lead_ms: int = 300
    refill_ms: int = 100
    start_hold_ms: int = 0
    start_fill_ms: int = 0
    mark_interval_ms: int = 100
    held_audio_ms: int = 250
    recent_output_ms: int = 400
    echo_wait_ms: int = 1000
    drain_margin_ms: int = 400
    link_rtt_prior_ms: int = 100
    link_jitter_prior_ms: int = 20
    history_ms: int = 2000

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            # bool is an int subclass; True as a duration is always a mistake.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"PlayoutConfig.{field.name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"PlayoutConfig.{field.name} must be >= 0, got {value}")
        if self.frame_ms <= 0:
            raise ValueError(f"PlayoutConfig.frame_ms must be > 0, got {self.frame_ms}")
        if self.mark_interval_ms <= 0:
            raise ValueError(
                f"PlayoutConfig.mark_interval_ms must be > 0, got {self.mark_interval_ms}"
            )
        if self.lead_ms < self.frame_ms:
            raise ValueError(
                f"PlayoutConfig.lead_ms ({self.lead_ms}) must be >= frame_ms ({self.frame_ms}),"
                " or playback would have gaps between frames"
            )
        if not self.frame_ms <= self.refill_ms <= self.lead_ms:
            raise ValueError(
                f"PlayoutConfig.refill_ms ({self.refill_ms}) must be between frame_ms "
                f"({self.frame_ms}) and lead_ms ({self.lead_ms})"
            )

        if self.start_fill_ms > self.lead_ms:
            raise ValueError(
                f"PlayoutConfig.start_fill_ms ({self.start_fill_ms}) must be <= lead_ms"
                f" ({self.lead_ms}): pacing never sends more than the lead at once"
            )

    @property
    def frame_bytes(self) -> int:
        """Bytes in one full frame."""
        return self.frame_ms * BYTES_PER_MS

    @property
    def mark_interval_bytes(self) -> int:
        """Bytes of sent audio between interval marks."""
        return self.mark_interval_ms * BYTES_PER_MS
