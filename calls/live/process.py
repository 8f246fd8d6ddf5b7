"""What one server process holds for its calls: one root, made when the process starts.

`CallProcess` holds the calls in progress (`roster`), the record writer
(`writer`), the beat that marks calls alive, reaps lost ones and stores
reviews (`beat`), the host's signals and hooks, sent once their rows are
committed (`host`), the model sessions opened ahead at the voice webhook
(`preopened`), the live view's feed (`feed`), the SIGTERM handover
(`shutdown`), and the call path's database threads (`db`). Nothing of it
waits for a first call: `start()` starts the writer's and the beat's
threads (the host's starts with its first signal), and `serve()`, run once
in the server's event loop (ASGI lifespan startup, or the first connection
of a server without one), puts the handover in front of the server's own
signal handlers.

The host's ASGI application (`calls.asgi.callbridge_application`, or
`serving`) starts the process's root with `start_process()`; the consumer
and the webhooks find it with `current()`.
Tests build one of their own and make it current.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from calls.agents import load_hooks
from calls.conf import callbridge_settings
from calls.live.beat import Beat
from calls.live.db import CallPathDatabase
from calls.live.feed import LiveFeed
from calls.live.handover import Shutdown
from calls.live.host import HostDispatcher
from calls.live.load import Load
from calls.live.preopen import PreopenedSessions
from calls.live.roster import LiveCall, Roster
from calls.live.tools import HostCode
from calls.live.writer import RecordWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    """The process-wide settings (seconds)."""

    alive_interval_s: float = 5.0
    lost_after_s: float = 30.0
    handover_grace_s: float = 5.0
    preopen_s: float = 10.0
    preopen_max: int = 200
    # The host's code (`calls.live.tools`): its hooks class, its threads, a tool's time.
    agent_hooks: str = "calls.agents.AgentHooks"
    tool_threads: int = 8
    tool_timeout_s: float = 10.0
    # Admission (`calls.live.load`): calls a process takes at most, the loop's lateness
    # past which it takes none (0: no limit).
    max_active_calls: int = 100
    admit_max_loop_lag_ms: int = 100

    @classmethod
    def from_django(cls) -> ProcessConfig:
        """From `CALLBRIDGE`, validated (`ImproperlyConfigured` names what is wrong)."""
        settings = callbridge_settings()
        return cls(
            alive_interval_s=settings.CALL_ALIVE_INTERVAL_S,
            lost_after_s=settings.CALL_LOST_AFTER_S,
            handover_grace_s=settings.CALL_HANDOVER_GRACE_S,
            preopen_s=settings.MODEL_PREOPEN_S,
            preopen_max=settings.MODEL_PREOPEN_MAX,
            agent_hooks=settings.AGENT_HOOKS,
            tool_threads=settings.TOOL_THREADS,
            tool_timeout_s=settings.TOOL_TIMEOUT_S,
            max_active_calls=settings.MAX_ACTIVE_CALLS,
            admit_max_loop_lag_ms=settings.ADMIT_MAX_LOOP_LAG_MS,
        )


class CallProcess:
    def __init__(self, config: ProcessConfig, writer: RecordWriter | None = None) -> None:
        self.config = config
        self.roster = Roster()
        self.beat = Beat(
            self.roster.pks, interval_s=config.alive_interval_s, lost_after_s=config.lost_after_s
        )
        self.host = HostDispatcher()
        self.writer = writer or RecordWriter(
            after_write=self.beat.review_soon, committed=self.host.committed
        )
        self.preopened = PreopenedSessions(config.preopen_s, config.preopen_max)
        self.feed = LiveFeed()
        self.load = Load(config.max_active_calls, config.admit_max_loop_lag_ms)
        self.shutdown = Shutdown(self.roster, self.preopened, config.handover_grace_s)
        self.db = CallPathDatabase()
        # The host's hooks and tools, on threads of their own.
        self.tools = HostCode(
            load_hooks(config.agent_hooks), config.tool_threads, config.tool_timeout_s
        )
        # Tasks started from callbacks (refusals, closes), kept referenced until done.
        self._background: set[asyncio.Future[Any]] = set()
        self._stopped = False

    def start(self) -> CallProcess:
        """Start the writer's and the beat's threads: the process serves from now on."""
        self.writer.start()
        self.beat.start()
        return self

    def serve(self) -> None:
        """In the server's event loop, once it runs: the SIGTERM handover goes in front
        of the server's own handlers (idempotent); the loop's lateness is measured from now."""
        self.shutdown.install()
        self.load.start()

    def call_started(self, call: LiveCall) -> None:
        self.roster.add(call)
        self.shutdown.call_joined(call)

    def call_ended(self, call: LiveCall) -> None:
        self.roster.remove(call)

    def keep(self, work: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run `work` in the background, referenced until it is done."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def end_remaining(self) -> None:
        """The process is exiting under the calls still here: their ends are recorded now
        (`server_shutdown`), on the event loop where they run, if there is one."""
        calls = self.roster.calls()
        if calls:
            logger.warning("process exiting with %d call(s) in progress", len(calls))
        for call in calls:
            call.end_at_exit()

    def stop(self, timeout_s: float = 10.0) -> None:
        """The process is exiting: the calls still here end now, their rows are written
        and their signals sent (each bounded), the threads stop."""
        if self._stopped:
            return
        self._stopped = True
        self.end_remaining()
        self.writer.close(timeout_s)
        self.host.close(timeout_s)
        self.beat.stop()
        self.tools.close()
        # At interpreter exit the threads' executor has already been shut down.
        with contextlib.suppress(RuntimeError):
            self.db.close()


_current: CallProcess | None = None


def current() -> CallProcess:
    """The process's root; `start_process()` must have made it."""
    if _current is None:
        raise RuntimeError(
            "no call process was started: the ASGI application starts it "
            "(calls.live.process.start_process)"
        )
    return _current


def start_process(config: ProcessConfig | None = None) -> CallProcess:
    """Make this process's root and start it (once; later calls return it)."""
    global _current
    if _current is None:
        process = CallProcess(config or ProcessConfig.from_django()).start()
        atexit.register(process.stop)
        _current = process
    return _current


def use_process(process: CallProcess | None) -> CallProcess | None:
    """Make `process` the current root (a test's own); returns the one it replaces."""
    global _current
    previous, _current = _current, process
    return previous


class ServingProcess:
    """The ASGI application, wrapped so the process serves from the server's start.

    At the ASGI lifespan's startup (Uvicorn's `--lifespan on`), or else at the
    first connection of any kind (Daphne has no lifespan), it runs the current
    process's `serve()` in the server's event loop. At the lifespan's shutdown
    the calls still here end on the loop, the feed stops, and the rest of the
    process stops off the loop.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._served = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if not self._served:
            self._served = True
            current().serve()
        await self.app(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._served = True
                current().serve()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                process = current()
                process.end_remaining()
                await process.feed.aclose()
                await process.load.aclose()
                await asyncio.to_thread(process.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return
