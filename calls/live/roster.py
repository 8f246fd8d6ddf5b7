"""The calls this process holds: one registry, from a call's start to its full end.

A call joins when its bridge starts and leaves once it has fully ended (its
tasks stopped, its sockets closed, its records handed to the writer). The
liveness beat marks these calls alive from its own thread; a deploy's
SIGTERM hands them over; a process exiting under them records their end.
"""

from __future__ import annotations

import threading
from typing import Protocol


class LiveCall(Protocol):
    """What the process asks of a call it holds."""

    @property
    def pk(self) -> int: ...

    def hand_over(self, grace_s: float) -> None:
        """End as `server_shutdown` at the call's next pause, or within `grace_s`."""

    async def wait_ended(self) -> None:
        """Return once the call has fully ended."""

    def end_at_exit(self) -> None:
        """The process exits under the call: record its end now (nothing if recorded)."""


class Roster:
    def __init__(self) -> None:
        # Read from the beat's thread too: changes and reads of the whole hold the lock
        # (`len` does not: the SIGTERM handler asks it, and must never wait for a lock).
        self._lock = threading.Lock()
        self._calls: dict[int, LiveCall] = {}

    def add(self, call: LiveCall) -> None:
        with self._lock:
            self._calls[call.pk] = call

    def remove(self, call: LiveCall) -> None:
        with self._lock:
            if self._calls.get(call.pk) is call:
                del self._calls[call.pk]

    def calls(self) -> list[LiveCall]:
        with self._lock:
            return list(self._calls.values())

    def pks(self) -> list[int]:
        with self._lock:
            return list(self._calls)

    def __len__(self) -> int:
        return len(self._calls)
