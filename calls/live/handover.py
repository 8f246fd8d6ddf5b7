"""A deploy hands calls over at a pause: SIGTERM drains this process's calls first.

Uvicorn closes every WebSocket the moment it is told to stop, mid-answer if
need be. Installed when the process takes its first call (when
`CALL_HANDOVER_GRACE_S` > 0; in the server's event loop and main thread, so
in front of the server's own handlers), the first SIGTERM or
SIGINT asks every live call to end as `server_shutdown` at its next pause (the
AI neither speaking nor generating, the caller not speaking, no answer owed)
or when the grace period is over, whichever comes first; Twilio then asks our
`<Connect action>` and the call goes on on a new stream in another process.
Once no call is left (or the grace period and a margin are over), the
server's own handler runs and it shuts down as usual. A second signal skips
the wait.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

from calls.live import preopen

logger = logging.getLogger(__name__)

# Past the grace period, how long the calls get to close their streams.
_MARGIN_S = 3.0


class HandsOver(Protocol):
    def hand_over(self, grace_s: float) -> None: ...

    async def wait_ended(self) -> None: ...


_live: set[HandsOver] = set()
_installed = False
# While draining: when the grace period ends (loop time). A call that arrives
# meanwhile (a new one, or one handed back here) is handed over at once too.
_draining_until: float | None = None


def call_started(call: HandsOver) -> None:
    global _installed
    _live.add(call)
    if _draining_until is not None:
        remaining = _draining_until - asyncio.get_running_loop().time()
        call.hand_over(max(0.0, remaining))
    if not _installed:
        _installed = True
        from django.conf import settings

        install(settings.CALL_HANDOVER_GRACE_S)


def call_ended(call: HandsOver) -> None:
    _live.discard(call)


def draining() -> bool:
    """Whether this process is handing its calls over (it is shutting down)."""
    return _draining_until is not None


async def drain(grace_s: float) -> None:
    """Ask every live call to hand over at its next pause; return when none is left
    (calls that arrive meanwhile included), or after the grace period and a margin."""
    global _draining_until
    loop = asyncio.get_running_loop()
    _draining_until = loop.time() + grace_s
    deadline = _draining_until + _MARGIN_S
    logger.warning(
        "shutting down: handing %d call(s) over at their next pause (at most %.0f s)",
        len(_live),
        grace_s,
    )
    for call in list(_live):
        call.hand_over(grace_s)
    # Streams still to come here would be handed over at once: their sessions go.
    preopen.discard_all()
    while _live and loop.time() < deadline:
        await asyncio.wait(
            [asyncio.ensure_future(call.wait_ended()) for call in list(_live)],
            timeout=deadline - loop.time(),
            return_when=asyncio.FIRST_COMPLETED,
        )


def install(grace_s: float) -> None:
    """Put the drain in front of the server's own SIGTERM/SIGINT handlers (main thread only)."""
    if grace_s <= 0 or threading.current_thread() is not threading.main_thread():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # not inside a server's event loop (a management command, a test)
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if callable(previous):
            signal.signal(sig, _handler(loop, grace_s, previous))
    logger.debug("calls are handed over at a pause on SIGTERM (grace %.0f s)", grace_s)


def _handler(
    loop: asyncio.AbstractEventLoop,
    grace_s: float,
    previous: Callable[[int, FrameType | None], Any],
) -> Callable[[int, FrameType | None], None]:
    state = {"draining": False}
    background: set[asyncio.Task[None]] = set()

    def handle(sig: int, frame: FrameType | None) -> None:
        if state["draining"] or not _live:
            previous(sig, frame)  # a second signal, or nothing to hand over: stop now
            return
        state["draining"] = True

        async def drain_then_stop() -> None:
            try:
                await drain(grace_s)
            finally:
                previous(sig, None)

        def start() -> None:
            task = loop.create_task(drain_then_stop())
            background.add(task)
            task.add_done_callback(background.discard)

        loop.call_soon_threadsafe(start)

    return handle
