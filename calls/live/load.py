"""How loaded this process is, and whether it may take one more call.

A server whose event loop runs late dates what it reads late, sends late and
judges late: past some load every call in the process loses its truth at
once. So the loop's lateness is measured all the time (a timer that asks to
wake every `interval_s` and notes how late it woke), and the voice webhook
asks `Load.refusal` before it takes a new call: refused when the process
already carries `max_calls`, or when its loop ran later than `max_lag_ms`
through the last second (the median of its wakes: one late wake is no
load). A refused call is turned away at the door (Twilio is told to dial
the overflow number, or to reject the call as busy), and the calls in
flight keep their truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

# How often the loop is asked to wake, and how far back its lateness counts.
_INTERVAL_S = 0.05
_WINDOW_S = 1.0
# How long a call admitted at the webhook counts before its stream arrives.
_EXPECT_S = 10.0


class LoopLag:
    """The event loop's lateness: how late a timer set for every `interval_s` wakes.

    Sans-IO at its core (`woke`, `recent_ms`, stepped-clock tests); `run` is the
    task that feeds it on the process's loop.
    """

    def __init__(
        self,
        interval_s: float = _INTERVAL_S,
        window_s: float = _WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.window_s = window_s
        self._clock = clock
        # (woke at, late by) over the window.
        self._recent: deque[tuple[float, float]] = deque()
        # When the measuring task's next wake is due (None: it is not running).
        self._due: float | None = None
        self.worst_s = 0.0

    def woke(self, planned: float, now: float) -> None:
        """The timer planned for `planned` ran at `now`."""
        late = max(0.0, now - planned)
        self._recent.append((now, late))
        self.worst_s = max(self.worst_s, late)
        while self._recent and self._recent[0][0] < now - self.window_s:
            self._recent.popleft()

    def recent_ms(self, now: float | None = None) -> int:
        """How late the loop ran over the last window: the median of its wakes, and of
        the wake still due if it is late already (ms; 0 when none). A loop that is late
        most of the time is overloaded; one late wake (a collection, a burst of calls
        starting) is not; a loop that just stalled longer than the window is."""
        now = self._clock() if now is None else now
        lates = [late for at, late in self._recent if at >= now - self.window_s]
        if self._due is not None and now > self._due:
            lates.append(now - self._due)  # the wake still to come is this late already
        lates.sort()
        return round(lates[len(lates) // 2] * 1000) if lates else 0

    async def run(self) -> None:
        """Measure the running loop until cancelled."""
        while True:
            self._due = planned = self._clock() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.woke(planned, self._clock())


class Load:
    """The process's load, and the admission rule for a new call."""

    def __init__(
        self,
        max_calls: int,
        max_lag_ms: int,
        lag: LoopLag | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_calls = max_calls
        self.max_lag_ms = max_lag_ms
        self.lag = lag or LoopLag(clock=clock)
        self.refused = 0
        self._clock = clock
        # The calls admitted at the webhook and not yet streaming here, by call SID: when.
        self._expected: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """On the process's event loop, once it runs (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.lag.run(), name="loop-lag")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def admit(self, call_sid: str, streaming: int) -> str | None:
        """Turn a new call away (why, safe to log), or admit it (None): it counts from
        now, before its stream comes (a burst of calls all pass the webhook before the
        first streams). A call admitted already (a retried webhook) is admitted again,
        counted once."""
        if call_sid in self._expected:
            return None
        reason = self.refusal(streaming)
        if reason is None:
            self._expected[call_sid] = self._clock()
        return reason

    def release(self, call_sid: str) -> None:
        """The call admitted will not stream after all (its webhook failed)."""
        self._expected.pop(call_sid, None)

    def joined(self, call_sid: str) -> None:
        """A call's stream began here: it counts in the roster now."""
        self._expected.pop(call_sid, None)

    def expected(self, now: float | None = None) -> int:
        """Calls admitted and not yet streaming (for `_EXPECT_S` at most: Twilio connects
        the stream within seconds, or another process took it)."""
        now = self._clock() if now is None else now
        expected = self._expected
        while expected:
            call_sid, at = next(iter(expected.items()))
            if at >= now - _EXPECT_S:
                break
            del expected[call_sid]
        return len(expected)

    def refusal(self, streaming: int, now: float | None = None) -> str | None:
        """Why a new call must be turned away (safe to log), with `streaming` calls in
        this process (and those admitted, still to stream); None: it may come in."""
        calls = streaming + self.expected(now)
        lag_ms = self.lag.recent_ms(now)
        if self.max_calls and calls >= self.max_calls:
            reason = f"{calls} calls in progress (limit {self.max_calls})"
        elif self.max_lag_ms and lag_ms > self.max_lag_ms:
            reason = f"event loop {lag_ms} ms late (limit {self.max_lag_ms} ms)"
        else:
            return None
        self.refused += 1
        return reason
