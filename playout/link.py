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
        self._clears: deque[float] = deque(maxlen=_WINDOW)
        self.rtt_s = self._prior_rtt_s
        self.jitter_s = self._prior_jitter_s
        # How much later than a round trip a run's first echo comes: the player's own
        # lead before it starts a run (a jitter buffer; a phone that starts late).
        self.lead_s = 0.0

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
        self._estimate()

    def clear_sample(self, rtt_s: float) -> None:
        """A clear's trip: from its send to the first mark it returned (seconds).

        Twilio acts on a clear as it arrives, so this is the round trip of the
        link alone, without the player's lead: a run's first echo later than
        that tells the lead (`lead_s`). Echoes are still dated with the round
        trip of runs (`rtt_s`): it is what their line is made of.
        """
        self._clears.append(max(0.0, rtt_s))
        self._estimate()

    def redate(self, shift_s: float) -> None:
        """The clock that dated the samples so far was off by `shift_s` (< 0: it dated
        them late, e.g. taking a busy server's lateness for the link): they move by it."""
        if not shift_s:
            return
        self._all = [max(0.0, rtt + shift_s) for rtt in self._all]
        self._recent = deque(self._all[-_WINDOW:], maxlen=_WINDOW)
        self._clears = deque((max(0.0, rtt + shift_s) for rtt in self._clears), maxlen=_WINDOW)
        if self._all or self._clears:
            self._estimate()

    def _estimate(self) -> None:
        ordered = sorted(self._recent)
        if len(ordered) >= _JITTER_SAMPLES:
            self.jitter_s = (_quantile(ordered, 0.9) - _quantile(ordered, 0.1)) / 2
        if ordered:
            self.rtt_s = _quantile(ordered, 0.5)
        if ordered and self._clears:
            self.lead_s = max(0.0, self.rtt_s - _quantile(sorted(self._clears), 0.5))

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
