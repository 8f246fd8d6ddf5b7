"""A call's counters: what it saw, counted, for its row and its last record."""

from __future__ import annotations

from dataclasses import dataclass, field

# Malformed messages logged (and recorded) per call; the rest are only counted.
LOGGED_PROTOCOL_ERRORS = 5
# A stream that keeps sending garbage is not a phone call.
MAX_PROTOCOL_ERRORS = 50
# DTMF digits recorded per call; the rest are counted (a caller holding a key,
# or a peer flooding, must not write a row per event).
MAX_DTMF_RECORDS = 100


@dataclass(slots=True)
class CallCounters:
    responses: int = 0
    protocol_errors: int = 0
    dtmf_digits: int = 0
    empty_frames: int = 0  # frames not forwarded: empty, or not the caller's track
    # |estimate error| of every accepted mark echo, ms: how true the playout truth was.
    estimate_errors_ms: list[int] = field(default_factory=list)

    def estimate_error_p95_ms(self) -> int | None:
        errors = sorted(self.estimate_errors_ms)
        return errors[int(0.95 * (len(errors) - 1))] if errors else None

    def at_end(self, end_reason: str) -> dict[str, object]:
        """The `stream_ended` record's counts."""
        return {
            "end_reason": end_reason,
            "dtmf_digits": self.dtmf_digits,
            "protocol_errors": self.protocol_errors,
            "empty_frames": self.empty_frames,
        }
