"""Database work on the call path (webhooks, the stream's claim), on threads of its own.

Like `channels.db.database_sync_to_async`, but never on the one executor
thread that `sync_to_async` shares with the rest of Django: a slow query
elsewhere cannot hold up a call's start. The threads live as long as the
process, so each keeps its connection (a call's start no longer pays for
opening one); a connection that failed is closed and opened again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.db import connection

P = ParamSpec("P")
T = TypeVar("T")

THREADS = 4


def _in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    except Exception:
        # Whatever went wrong, the next call starts on a fresh connection.
        connection.close()
        raise


class CallPathDatabase:
    """The call path's own threads for ORM work; one set per process."""

    def __init__(self, threads: int = THREADS) -> None:
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="call-db")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the synchronous `fn` (ORM code) on the call-path threads and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: _in_thread(fn, *args, **kwargs))

    def close(self) -> None:
        """Close every thread's connection, then the threads (the process is stopping)."""
        barrier = threading.Barrier(self._threads, timeout=10)

        def close() -> None:
            # Each task waits for the others, so every thread takes exactly one.
            barrier.wait()
            connection.close()

        try:
            for future in [self._executor.submit(close) for _ in range(self._threads)]:
                future.result(timeout=15)
        finally:
            self._executor.shutdown(wait=False)
