"""Database work on the live call path (the stream's claim), on threads of its own.

Like `channels.db.database_sync_to_async` (Django's connection hygiene before
and after), but never on the one executor thread that `sync_to_async` shares
with the rest of Django: a slow query elsewhere cannot hold up a call's start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.db import close_old_connections

P = ParamSpec("P")
T = TypeVar("T")

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="call-db")


def _hygienic(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def run_db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run the synchronous `fn` (ORM code) on the call-path threads and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, lambda: _hygienic(fn, *args, **kwargs))
