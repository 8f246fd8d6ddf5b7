"""The network between us and Twilio's player, measured per call from mark echoes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# Samples the running estimate looks at: enough to ride out one odd echo, few
# enough to follow a link that changes during a call.
_WINDOW = 16
# Samples needed before their spread replaces the prior jitter.
_JITTER_SAMPLES = 3


@dataclass(frozen=True, slots=True)
class LinkStats:
    """The link of a call as measured: round trip p50/p95, jitter, how many samples (ms)."""

    rtt_p50_ms: int | None
    rtt_p95_ms: int | None
    jitter_ms: int | None
    samples: int


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile of an ordered, non-empty list."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class LinkEstimate:
    """Round trip (us to Twilio's player and back) from clean mark echoes, with its spread.

    A clean sample is the echo of the first mark after the player ran dry: all
    the audio before that mark was sent at once into an empty buffer, so the
    echo's lateness over the audio's own length is one round trip. The
    estimate is the median of the last samples (robust to an echo delayed by
    an underrun or a retransmission); the jitter is half their 10-90% range.
    Until the first sample, the priors stand in. Symmetric links are assumed:
    one way is half the round trip.
    """

    def __init__(self, prior_rtt_ms: int, prior_jitter_ms: int) -> None:
        self._prior_rtt_s = prior_rtt_ms / 1000
        self._prior_jitter_s = prior_jitter_ms / 1000
        self._recent: deque[float] = deque(maxlen=_WINDOW)
        self._all: list[float] = []
        self.rtt_s = self._prior_rtt_s
        self.jitter_s = self._prior_jitter_s

    @property
    def one_way_s(self) -> float:
        return self.rtt_s / 2

    @property
    def samples(self) -> int:
        return len(self._all)

    @property
    def jitter_measured(self) -> bool:
        """Whether the jitter in use is measured (enough samples) rather than the prior."""
        return len(self._recent) >= _JITTER_SAMPLES

    def sample(self, rtt_s: float) -> None:
        """A measured round trip (seconds); negative values (clock noise) count as 0."""
        rtt_s = max(0.0, rtt_s)
        self._recent.append(rtt_s)
        self._all.append(rtt_s)
        ordered = sorted(self._recent)
        self.rtt_s = _quantile(ordered, 0.5)
        if len(ordered) >= _JITTER_SAMPLES:
            self.jitter_s = (_quantile(ordered, 0.9) - _quantile(ordered, 0.1)) / 2

    def stats(self) -> LinkStats:
        if not self._all:
            return LinkStats(None, None, None, 0)
        ordered = sorted(self._all)
        return LinkStats(
            rtt_p50_ms=round(_quantile(ordered, 0.5) * 1000),
            rtt_p95_ms=round(_quantile(ordered, 0.95) * 1000),
            # Measured only: below three samples the jitter in use is the prior.
            jitter_ms=round(self.jitter_s * 1000) if len(ordered) >= _JITTER_SAMPLES else None,
            samples=len(ordered),
        )
