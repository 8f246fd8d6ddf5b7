"""Awaitable state predicates: lets tests wait for what proves a state instead of sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 5.0


class Notifier:
    """Wakes waiters whenever the owner's state changed, so they re-check their predicate."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        """Signal a state change; cheap when nobody waits."""
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for(
        self, predicate: Callable[[], T | None], timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> T:
        """Return the first truthy value of `predicate()`, re-checked on every change.

        Raises `TimeoutError` after `timeout_s` seconds.
        """
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout_s):
            while True:
                value = predicate()
                if value:
                    return value
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append(waiter)
                await waiter
