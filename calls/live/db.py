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

_executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="call-db")


def _in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    except Exception:
        # Whatever went wrong, the next call starts on a fresh connection.
        connection.close()
        raise


async def run_db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run the synchronous `fn` (ORM code) on the call-path threads and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, lambda: _in_thread(fn, *args, **kwargs))


def close_connections() -> None:
    """Close every call-path thread's connection (a process stopping, a test run ending)."""
    barrier = threading.Barrier(THREADS, timeout=10)

    def close() -> None:
        # Each task waits for the others, so every thread takes exactly one.
        barrier.wait()
        connection.close()

    for future in [_executor.submit(close) for _ in range(THREADS)]:
        future.result(timeout=15)
