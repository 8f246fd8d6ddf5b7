"""The live view's feed: a call's notable moments, published off the audio path.

The bridge hands an event to `publish` (an append to a bounded queue, nothing
else); a task of the process sends them to the channel layer's `LIVE_GROUP`,
which the staff live view (`calls.liveview`) listens to, whatever process
served the call. When the layer is slow or away the feed drops events (the
live view is a view, the records are in the database) and says so once; it
never delays a frame or ends a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from channels.layers import get_channel_layer

from callcore.records import BargeInFigures

logger = logging.getLogger(__name__)

LIVE_GROUP = "calls.live"
EVENT_TYPE = "live.events"
# Events sent in one channel-layer message at most: under load, a message per
# event would fill the viewers' channels (capacity 100) and queue behind itself.
BATCH = 50
# Events waiting to be sent at most; past it the oldest are dropped.
MAX_QUEUED = 1000
SEND_TIMEOUT_S = 1.0


def live_figures(figures: BargeInFigures) -> dict[str, Any]:
    """What the live view shows of a barge-in."""
    return {
        "reaction_ms": figures.reaction_ms,
        "playout_remaining_ms": figures.playout_remaining_ms,
        "audio_end_ms": figures.audio_end_ms,
        "response_cancelled": figures.response_cancelled,
        "heard_text": figures.heard_text,
    }


class LiveFeed:
    def __init__(self) -> None:
        self._queue: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUED)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.dropped = 0

    def publish(self, event: dict[str, Any]) -> None:
        """Queue one event (with the wall time it happened); never blocks, never raises."""
        if len(self._queue) == MAX_QUEUED:
            self.dropped += 1
        self._queue.append({**event, "at": time.time()})
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="live-feed")
        assert self._wake is not None
        self._wake.set()

    async def _run(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            self._queue.clear()
            return
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                try:
                    # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` swallows a
                    # cancel that lands as the send completes, and this task would outlive
                    # its event loop's shutdown (seen: a test's teardown hung on it).
                    async with asyncio.timeout(SEND_TIMEOUT_S):
                        await layer.group_send(LIVE_GROUP, {"type": EVENT_TYPE, "events": batch})
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.dropped += len(batch) + len(self._queue)
                    self._queue.clear()
                    if not self._failing:
                        logger.warning(
                            "live view feed: channel layer unavailable (%s); events dropped "
                            "until it is back (calls are not affected)",
                            type(exc).__name__,
                        )
                    self._failing = True
                    break
                else:
                    if self._failing:
                        logger.info("live view feed: channel layer back")
                    self._failing = False

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
