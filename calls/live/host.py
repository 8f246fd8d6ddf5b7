"""What a host hears of the process's calls: its signals and hooks, run on a thread of their own.

The writer hands over the rows each commit stored (`committed`, on the
writer's thread); their signals a host listens for (`calls.live.announce`)
wait in a bounded queue for the host's thread, which sends them in commit order with
Django's `send_robust`. `call()` runs a host's hook there too, fire and
forget. Sync receivers and hooks run in that thread, with the ORM
available (its connections closed when the queue runs empty, as at a
request's end); async ones through asgiref's `async_to_sync`, on an event
loop of the host's own, never the server's, and their `sync_to_async` work
comes back to this thread, never to the executor the consumers share.

Nothing here blocks or raises into the writer or a call: a full queue
drops the newest (one warning a burst), a receiver or hook that raises is
logged with its name, the signal's and the call SID, and one that is slow
is reported. The call's SID, numbers and agent are read from its row once,
in this thread, when its first signal is sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from asgiref.sync import AsyncSingleThreadContext, async_to_sync, iscoroutinefunction
from django.db import DatabaseError, close_old_connections, connections

from calls import signals
from calls.live.announce import SIGNAL_NAMES, Announcement, announcements
from calls.live.logcontext import call_context
from calls.live.writer import BargeInRow, LogRow

logger = logging.getLogger(__name__)

# Signals and hooks waiting for the host's thread: minutes of 100 calls' worth.
MAX_QUEUED = 10_000
# One send (all its receivers) or hook taking longer is reported.
SLOW_S = 1.0
# Calls whose row was read, kept until their `call_ended` (or the oldest, past this).
MAX_CALLS_KNOWN = 10_000


class _Call(NamedTuple):
    """What the signals tell of a call, from its row."""

    call_sid: str
    from_number: str
    to_number: str
    agent_name: str


@dataclass(frozen=True, slots=True)
class _Hook:
    call_sid: str
    fn: Callable[..., object]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class HostDispatcher:
    """The host's signals and hooks of one process, on one daemon thread (started when
    first needed); `clock` is monotonic seconds (tests step it)."""

    def __init__(
        self,
        max_queued: int = MAX_QUEUED,
        slow_s: float = SLOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_queued = max_queued
        self.slow_s = slow_s
        self._clock = clock
        self._ready = threading.Condition()
        # Guarded by `_ready`: what waits, the thread that takes it (None: none running).
        self._queue: deque[Announcement | _Hook] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        # Dropping since the queue was last empty: said once.
        self._overflowing = False
        self.dropped = 0
        # The host's thread's own.
        self._calls: OrderedDict[int, _Call] = OrderedDict()

    # --- the writer's and the calls' side ------------------------------------------------------

    def committed(self, logs: Sequence[LogRow], barge_ins: Sequence[BargeInRow]) -> None:
        """Rows the writer just committed (its thread): the signals of them a host listens
        for, queued in order. Never raises."""
        try:
            from calls.models import CallSession

            listened = [s for s in SIGNAL_NAMES if s.has_listeners(CallSession)]
            found = announcements(logs, barge_ins, listened) if listened else []
        except Exception:
            logger.exception("host signals of %d committed rows not made", len(logs))
            return
        for item in found:
            self._put(item, f"call {item.call_pk}")

    def call(self, call_sid: str, fn: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
        """Run the host's hook `fn(*args, **kwargs)` (sync or async) on the host's thread,
        for call `call_sid`, fire and forget: what it raises is logged. Never blocks."""
        self._put(_Hook(call_sid, fn, args, kwargs), f"call {call_sid}")

    def _put(self, item: Announcement | _Hook, whose: str) -> None:
        first_dropped = False
        with self._ready:
            if len(self._queue) >= self.max_queued:
                self.dropped += 1
                first_dropped, self._overflowing = not self._overflowing, True
            else:
                self._queue.append(item)
                self._ready.notify()
                if self._thread is None:
                    self._start_thread()
        if first_dropped:
            logger.warning(
                "host signal queue full (%d waiting, a receiver is slow): dropping what "
                "comes, from %s's %s on, until it has caught up",
                self.max_queued,
                whose,
                _label(item),
            )

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name="callbridge-host", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # out of threads: what waits goes with the next item
            logger.exception("the host's thread did not start")
        else:
            self._thread = thread

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued and stop the thread (the process is stopping); bounded."""
        with self._ready:
            thread = self._thread
            self._stopping = True
            self._ready.notify()
        if thread is None:
            return
        thread.join(timeout_s)
        if thread.is_alive():
            with self._ready:
                waiting = len(self._queue)
            logger.error("host signals not sent at exit: %d waiting behind a slow one", waiting)

    # --- the host's thread ---------------------------------------------------------------------

    def _run(self) -> None:
        # Every `async_to_sync` of this thread runs its loop on one thread of its own.
        with AsyncSingleThreadContext():  # type: ignore[no-untyped-call]  # untyped in asgiref
            while (item := self._next()) is not None:
                started = self._clock()
                call_sid = self._deliver(item)
                took = self._clock() - started
                if took > self.slow_s:
                    logger.warning(
                        "%s for call %s took %.1f s: the host's signals wait for it",
                        _label(item),
                        call_sid,
                        took,
                    )
        connections.close_all()

    def _next(self) -> Announcement | _Hook | None:
        """The next item; None once stopping with nothing left (the thread then ends)."""
        with self._ready:
            if self._queue:
                return self._queue.popleft()
            self._overflowing = False
        try:
            close_old_connections()  # idle: as at a request's end
        except Exception:  # the thread must outlive it: nothing else takes the queue
            logger.exception("the host thread's database connections not closed")
        with self._ready:
            while not self._queue and not self._stopping:
                self._ready.wait()
            if self._queue:
                return self._queue.popleft()
            self._thread = None
            return None

    def _deliver(self, item: Announcement | _Hook) -> str:
        """Send or run `item`; its call's SID. Whatever it raises is logged here."""
        call_sid = item.call_sid if isinstance(item, _Hook) else ""
        try:
            if isinstance(item, _Hook):
                self._run_hook(item)
            else:
                call_sid = self._send(item)
        except Exception:
            logger.exception("%s for call %s not delivered", _label(item), call_sid)
        return call_sid

    def _send(self, item: Announcement) -> str:
        from calls.models import CallSession

        call = self._call(item.call_pk)
        if call is None:
            return ""
        named = {"call_sid": call.call_sid, "call_pk": item.call_pk, **item.named}
        if item.signal is signals.call_started:
            named.update(
                from_number=call.from_number, to_number=call.to_number, agent_name=call.agent_name
            )
        with call_context(call.call_sid):
            responses = item.signal.send_robust(CallSession, **named)
        for receiver, response in responses:
            if isinstance(response, Exception):
                # Django logs the traceback ("django.dispatch"); this line names the call.
                logger.error(
                    "receiver %s of %s failed for call %s (%s)",
                    _name(receiver),
                    item.name,
                    call.call_sid,
                    type(response).__name__,
                )
        if item.signal is signals.call_ended:
            self._calls.pop(item.call_pk, None)
        return call.call_sid

    def _run_hook(self, hook: _Hook) -> None:
        with call_context(hook.call_sid):
            try:
                if iscoroutinefunction(hook.fn):
                    async_to_sync(hook.fn)(*hook.args, **hook.kwargs)
                else:
                    hook.fn(*hook.args, **hook.kwargs)
            except Exception as exc:
                # Nobody else logs a hook's traceback (Django does a receiver's).
                logger.exception(
                    "host hook %s failed for call %s (%s)",
                    _name(hook.fn),
                    hook.call_sid,
                    type(exc).__name__,
                )

    def _call(self, call_pk: int) -> _Call | None:
        """The call's facts, from its row (read once); None if it cannot be read."""
        call = self._calls.get(call_pk)
        if call is not None:
            return call
        from calls.models import CallSession

        fields = ("call_sid", "from_number", "to_number", "agent_name")
        try:
            row = CallSession.objects.filter(pk=call_pk).values_list(*fields).first()
        except DatabaseError as exc:
            logger.error(
                "host signal for call %d not sent: its row could not be read (%s)",
                call_pk,
                type(exc).__name__,
            )
            return None
        if row is None:
            return None  # deleted since its rows were committed: nobody to tell of
        self._calls[call_pk] = call = _Call(*row)
        if len(self._calls) > MAX_CALLS_KNOWN:
            self._calls.popitem(last=False)
        return call


def _label(item: Announcement | _Hook) -> str:
    if isinstance(item, _Hook):
        return f"host hook {_name(item.fn)}"
    return f"signal {item.name}"


def _name(fn: object) -> str:
    """A receiver's or hook's dotted name, for the log."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}"
