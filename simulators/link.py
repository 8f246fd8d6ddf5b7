"""A network path, one direction at a time: delay, jitter, and order kept (as TCP keeps it)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class LinkProfile:
    """One direction: every message is late by `delay_ms` plus up to `jitter_ms` (uniform).

    A message never overtakes the one before it: jitter on a TCP stream shows
    as bunching, never as reordering.
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0

    @property
    def is_instant(self) -> bool:
        return self.delay_ms <= 0 and self.jitter_ms <= 0


class Link(Generic[T]):
    """Delivers items to `deliver` after the profile's delay, in order; `clock` is monotonic s."""

    def __init__(
        self,
        profile: LinkProfile,
        deliver: Callable[[T], None],
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.profile = profile
        self._deliver = deliver
        self._rng = rng or random.Random(0)
        self._clock = clock
        self._queue: deque[tuple[float, float, T]] = deque()
        self._last_at = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self.delivering_late_s = 0.0
        """How long the item now being delivered spent on the link (valid inside `deliver`)."""

    def delivery_time(self, now: float) -> float:
        """When an item sent at `now` arrives (never before the previous item)."""
        late_ms = self.profile.delay_ms + self._rng.uniform(0.0, self.profile.jitter_ms)
        self._last_at = max(now + late_ms / 1000.0, self._last_at)
        return self._last_at

    def send(self, item: T) -> float:
        """Put `item` on the link; returns how long it will take to arrive (seconds)."""
        now = self._clock()
        if self.profile.is_instant and not self._queue:
            self.delivering_late_s = 0.0
            self._deliver(item)
            return 0.0
        due = self.delivery_time(now)
        self._queue.append((due, now, item))
        if self._timer is None:
            self._arm()
        return due - now

    def _arm(self) -> None:
        due = self._queue[0][0]
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, due - self._clock()), self._drain)

    def _drain(self) -> None:
        self._timer = None
        now = self._clock()
        while self._queue and self._queue[0][0] <= now:
            _, sent_at, item = self._queue.popleft()
            self.delivering_late_s = now - sent_at
            self._deliver(item)
        if self._queue:
            self._arm()

    def cancel(self) -> None:
        """Drop what is still in flight (the connection is gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
