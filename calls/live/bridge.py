"""The asyncio shell of one call: reads the clock, moves bytes, and does what `CallCore` says.

Every decision is the core's (`callcore.CallCore`, sans-IO). This shell feeds
it what arrives from Twilio (through the consumer) and from the Realtime
session (its reader task), with the time it arrived; sends what it returns,
in order; and wakes it at `next_timer()` with one timer. It owns two tasks,
both cancelled and awaited on every way out:

- uplink: opens the Realtime session, then sends client events in order
  (caller audio, queued while the session connects, and control events);
  once it is open and nothing waits in its queue, the drain writes an event
  straight onto the socket instead (`direct_writer`), keeping the order;
- model: the Realtime event reader.

When the core gives up on a session (`ReplaceModel`: it went quiet, or
closed under a caller still on the line), both are replaced: a fresh queue
takes the client events meant for the new session at once, and a new
uplink task opens it (bounded by `REPLACE_TIMEOUT_S`) and sends them.

Nothing on the audio path awaits the database: the recorder hands rows to
the process's writer. The call is in the process's roster from `start()`
until it has fully ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from callcore import (
    BargeIn,
    CallCore,
    CallUpdate,
    CoreConfig,
    EndOfCall,
    EndReason,
    Log,
    Output,
    Record,
    RecordKind,
    ReplaceModel,
    RunTool,
    ToModel,
    ToolResult,
    ToTwilio,
    WatchdogConfig,
)
from callcore.conversation import Turn
from callcore.protocol.realtime import RealtimeProtocolError, parse_server_event
from callcore.protocol.twilio import Dtmf, Mark, Media
from calls.live.config import BridgeConfig
from calls.live.feed import live_figures
from calls.live.process import CallProcess
from calls.live.realtime import (
    OpenedModel,
    RealtimeConnection,
    close_quietly,
    direct_writer,
    discard_model,
    raw_sender,
)
from calls.live.recorder import CallRecorder
from calls.tools import CallContext

logger = logging.getLogger(__name__)
core_logger = logging.getLogger("callcore")
# The shell reads the clock; the core is handed the time.
_now = time.monotonic

# How long a call's end may wait for its last records to be written.
RECORDS_TIMEOUT_S = 15
# How long a call that ends under a caller still on the line waits for its end
# to be written before closing the stream (see `_shutdown`).
END_RECORD_WAIT_S = 1.0
# How long opening a replacement model session may take before it counts as failed.
REPLACE_TIMEOUT_S = 5.0
# How long the call's own tasks get to stop once cancelled, as the call ends.
TASKS_STOP_TIMEOUT_S = 5.0

# What the staff live view is told of (calls.live.feed), besides barge-ins.
LIVE_KINDS = {
    RecordKind.STREAM_STARTED,
    RecordKind.USER_SPEECH_AI_SILENT,
    RecordKind.DRAIN_STARTED,
    RecordKind.DRAIN_COMPLETED,
    RecordKind.MODEL_FAULT,
    RecordKind.MODEL_RECOVERED,
    RecordKind.STREAM_ENDED,
}


class TwilioSide(Protocol):
    """The media-stream socket, as the bridge sees it."""

    async def send_text(self, text: str) -> None: ...

    async def close_stream(self, code: int) -> None: ...


@dataclass(frozen=True, slots=True)
class CallIdentity:
    pk: int
    call_sid: str
    stream_sid: str
    from_number: str = ""
    to_number: str = ""


class CallBridge:
    """Bridges one Twilio media stream to one Realtime session."""

    def __init__(
        self,
        call: CallIdentity,
        twilio: TwilioSide,
        config: BridgeConfig,
        process: CallProcess,
        model: asyncio.Future[OpenedModel],
        recorder: CallRecorder,
        started_at: float,
        reopen: Callable[[], Awaitable[OpenedModel]],
        resumed_turns: tuple[Turn, ...] = (),
    ) -> None:
        self.call = call
        self.config = config
        self.recorder = recorder
        self.process = process
        greeting = config.greeting_instructions if config.greeting else ""
        self.core = CallCore(
            CoreConfig(
                stream_sid=call.stream_sid,
                playout=config.playout,
                prefix_padding_ms=config.session.prefix_padding_ms,
                greeting_instructions=greeting,
                uplink_chunk_ms=config.uplink_chunk_ms,
                media_message_ms=config.media_message_ms,
                watchdog=WatchdogConfig(
                    response_start_ms=config.model_response_timeout_ms,
                    response_stall_ms=config.model_response_timeout_ms,
                ),
                max_model_recoveries=config.model_max_recoveries,
                resumed_turns=resumed_turns,
                transfer_targets=config.transfer_targets,
                tool_hold_after_ms=config.tool_hold_after_ms,
                tool_hold_instructions=config.tool_hold_instructions,
                keypad_pause_ms=config.keypad_pause_ms,
                turns=config.turns,
                greeting_interruptible=config.greeting_interruptible,
            ),
            started_at,
        )
        self._twilio = twilio
        self._model_opening = model
        self._reopen = reopen
        self._rt: RealtimeConnection | None = None
        self._uplink: asyncio.Queue[str] = asyncio.Queue()
        # The session in use's synchronous send (`direct_writer`), once its uplink
        # has opened it: a client event goes at once when nothing waits before it.
        self._write_now: Callable[[str], bool] | None = None
        # The model session in use; a reader or uplink of an older one feeds nothing.
        self._session = 0
        self._session_tasks: list[asyncio.Task[None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._draining = False
        # A timer fired that the drain is to run (see `_on_timer`).
        self._timer_due = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ending: asyncio.Future[None] | None = None
        # Tools under way: each one's stop, called as the call ends.
        self._tool_runs: dict[str, Callable[[], None]] = {}
        self._end_waiters: list[asyncio.Future[None]] = []

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.process.call_started(self)
        self.process.load.joined(self.call.call_sid)
        self._spawn(self._run_uplink(self._model_opening, self._uplink, 0), "uplink")
        self._spawn_drain()

    @property
    def pk(self) -> int:
        return self.call.pk

    @property
    def ended(self) -> bool:
        return self._ending is not None

    def end_at_exit(self) -> None:
        """The process exits under this call: its end is recorded now, unless it was."""
        self.recorder.end_at_exit()

    async def end(self, reason: EndReason) -> None:
        """End the call (idempotent) and return once it has fully ended."""
        self.core.end(reason, _now())
        await self._drain()
        await self.wait_ended()

    def hand_over(self, grace_s: float) -> None:
        """The process is stopping: end at the call's next pause (a deploy's handover)."""
        self.core.hand_over(_now(), grace_s)
        self._spawn_drain()

    async def wait_ended(self) -> None:
        """Return once the call has fully ended: tasks stopped, sockets closed, records written."""
        while self._ending is None:
            # Only an end the core decided (EndOfCall) starts the shutdown; be told of it.
            waiter = asyncio.get_running_loop().create_future()
            self._end_waiters.append(waiter)
            await waiter
        await asyncio.shield(self._ending)

    def _spawn(self, work: Coroutine[Any, Any, None], role: str) -> None:
        if self.ended:
            work.close()
            return
        task = asyncio.create_task(work, name=f"{role}-{self.call.call_sid}")
        task.add_done_callback(self._task_finished)
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(task)
        if role in ("uplink", "model"):
            self._session_tasks.append(task)

    def _task_finished(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # A bug must not leave the call half-bridged: end it, with the evidence.
            logger.error("task %s failed", task.get_name(), exc_info=exc)
            self.core.end(EndReason.INTERNAL_ERROR, _now())
            self._spawn_drain()

    def _spawn_drain(self) -> None:
        self.process.keep(self._drain())

    # --- doing what the core says ----------------------------------------------------------

    async def _drain(self) -> None:
        """Carry out the core's outputs in order; one drain at a time keeps that order."""
        if self._draining:
            return  # the drain in progress takes what was just added
        self._draining = True
        core = self.core
        try:
            while True:
                if self._timer_due:
                    # A timer that may clear Twilio runs here, in a task already: the
                    # clear leaves at the time it is dated by, not a loop turn later.
                    self._timer_due = False
                    core.timer(_now())
                if (out := core.pop_output()) is None:
                    break
                match out:
                    case ToTwilio():
                        await self._twilio.send_text(out.text)
                    case BargeIn():
                        await self._twilio.send_text(out.clear)
                        # The reaction ends once the clear is on its way, not before.
                        barge_in = out.reacted(_now())
                        log = barge_in.log_line()
                        core_logger.log(log.level, log.message, *log.args)
                        self.recorder.barge_in(barge_in)
                        self._publish("barge_in", live_figures(barge_in.figures))
                    case _:
                        self._carry_out(out)
        finally:
            self._draining = False
            self._arm_timer()

    def _drain_now(self) -> None:
        """What needs no waiting (client events, records) at once, in order, without a
        task; a drain task takes over at the first output that must wait (a send to
        Twilio), or the drain in progress takes them all."""
        if self._draining:
            return
        core = self.core
        while (out := core.next_output()) is not None and not isinstance(out, ToTwilio | BargeIn):
            core.pop_output()
            self._carry_out(out)
        if core.has_output:
            self._spawn_drain()
        else:
            self._arm_timer()

    def _carry_out(self, out: Output) -> None:
        """One output that needs no waiting."""
        match out:
            case ToModel():
                write = self._write_now
                if write is None or not self._uplink.empty() or not write(out.text):
                    self._uplink.put_nowait(out.text)
            case Record():
                self.recorder.log(out.kind, out.at, out.playout_status, **out.details)
                if out.kind in LIVE_KINDS:
                    self._publish(out.kind, out.details)
                elif out.kind == RecordKind.KEYPAD_INPUT and "ignored" not in out.details:
                    self._keypad(out.details["digits"])
            case RunTool():
                self._run_tool(out)
            case CallUpdate():
                self.recorder.update_call(out.fields, ended_at=out.ended_at)
            case Log():
                core_logger.log(out.level, out.message, *out.args)
            case ReplaceModel():
                self._replace_model(out.attempt)
            case EndOfCall():
                self._begin_shutdown(out.reason)
            case ToTwilio() | BargeIn():
                raise AssertionError("a send to Twilio is the drain's")

    def _run_tool(self, request: RunTool) -> None:
        """Start a tool the model called (`calls.live.tools`); its result goes to the core.

        Started at once, from the drain that carries the call out (a sync tool
        is on a tool thread before this returns); the call goes on while it
        runs (the caller may speak, the AI says a holding line). Its result is
        taken as soon as it comes, and its output written without a task in
        between (`_drain_now`). A call that ends first stops waiting for it (a
        sync tool's thread finishes on its own, unheard).
        """
        call, config = self.call, self.config
        context = CallContext(call.call_sid, call.from_number, call.to_number, config.agent_name)
        self._tool_runs[request.call_id] = self.process.tools.start_tool(
            request, context, config.tools, self._tool_finished
        )

    def _tool_finished(self, result: ToolResult) -> None:
        self._tool_runs.pop(result.call_id, None)
        if self.ended:
            return
        self.core.tool_finished(result, _now())
        self._drain_now()

    def _keypad(self, digits: str) -> None:
        """The host's keypad hook, off the audio path (the host dispatcher's thread)."""
        call_sid = self.call.call_sid
        self.process.host.call(call_sid, self.process.tools.hooks.keypad, call_sid, digits)

    def _publish(self, kind: str, details: dict[str, Any]) -> None:
        """To the live view (an append; sent off the audio path by the feed's task)."""
        call = self.call
        event = {"kind": kind, "call_sid": call.call_sid, "pk": call.pk, **details}
        if kind == RecordKind.STREAM_STARTED:
            event["from_number"] = call.from_number
        self.process.feed.publish(event)

    def _arm_timer(self) -> None:
        """One timer per call, at the core's `next_timer()`."""
        at = self.core.next_timer()
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None and not self.ended:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, at - _now()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.core.judging_sound or self.core.sends_due(_now()):
            # It may pause or cut the answer, or send audio: done in the drain, when the
            # clear or the frames can go (dated by when they leave, not a loop turn before
            # a busy loop gets to send them).
            self._timer_due = True
            if not self._draining:
                self._spawn_drain()
            return
        self.core.timer(_now())
        if self._draining:
            return  # the drain in progress takes the outputs, then re-arms
        if self.core.has_output:
            self._spawn_drain()
        else:
            # Most wake-ups only move a deadline: no task for them (about ten a second a call).
            self._arm_timer()

    # --- the caller (the consumer calls these, one message at a time) ----------------------

    async def on_media(self, media: Media) -> None:
        self.core.caller_audio(media, _now())
        await self._drain()

    async def on_mark(self, mark: Mark) -> None:
        self.core.mark_echoed(mark.name, _now())
        await self._drain()

    async def on_dtmf(self, dtmf: Dtmf) -> None:
        self.core.caller_dtmf(dtmf.digit, _now())
        await self._drain()

    async def protocol_error(self, reason: str) -> None:
        self.core.protocol_error(reason, _now())
        await self._drain()

    def caller_gone(self) -> None:
        """A send found the caller's socket gone: the caller has left."""
        self.core.end(EndReason.CALLER_DISCONNECTED, _now())
        self._spawn_drain()

    # --- the model --------------------------------------------------------------------------

    async def _run_uplink(
        self, opening: Awaitable[OpenedModel], queue: asyncio.Queue[str], session: int
    ) -> None:
        """Open session `session`, then send it the client events of `queue`, in order."""
        try:
            if session == 0:
                opened = await opening
            else:
                # `asyncio.timeout`: `wait_for` can swallow this task's cancel on 3.11.
                async with asyncio.timeout(REPLACE_TIMEOUT_S):
                    opened = await opening
        except Exception as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            if session == 0:
                self.core.model_open_failed(what, _now())
            else:
                self.core.model_replace_failed(what, _now())
            await self._drain()
            return
        self._rt = rt = opened.connection
        if session == 0:
            self.core.model_opened(_now(), opened.connect_ms, opened.ahead)
        else:
            self.core.model_replaced(_now(), opened.connect_ms)
        await self._drain()
        if session != self._session:
            return  # replaced already (the drain above may have asked for it)
        self._spawn(self._read_model(rt, session), "model")
        try:
            await self._send_events(rt, queue, session)
        finally:
            if session == self._session:
                self._write_now = None

    async def _send_events(
        self, rt: RealtimeConnection, queue: asyncio.Queue[str], session: int
    ) -> None:
        """Send session `session` the client events of `queue`, in order.

        Whenever the queue is empty, the drain may write an event at once
        (`direct_writer`); this task sends the rest: those queued while the
        session opened, and any the socket could not take at once, waiting or
        failing as its `send` says.
        """
        send = raw_sender(rt)
        writer = direct_writer(rt)
        while True:
            if queue.empty():
                self._write_now = writer
            text = await queue.get()
            self._write_now = None
            try:
                await send(text)
            except ConnectionClosed as exc:
                if session == self._session:
                    self.core.model_closed(isinstance(exc, ConnectionClosedOK), _now())
                    await self._drain()
                return
            if session != self._session:
                return

    def _replace_model(self, attempt: int) -> None:
        """Drop the session in use (its tasks, its socket) and start opening the next."""
        self._session += 1
        self._write_now = None
        old_tasks, self._session_tasks = self._session_tasks, []
        current = asyncio.current_task()
        for task in old_tasks:
            if task is not current:
                task.cancel()
        if self._rt is not None:
            old, self._rt = self._rt, None
            self.process.keep(close_quietly(old))
        # What the core sends from now on is for the new session.
        self._uplink = asyncio.Queue()
        logger.info("replacing the model session (attempt %d)", attempt)
        self._spawn(self._run_uplink(self._reopen(), self._uplink, self._session), "uplink")

    async def _read_model(self, rt: RealtimeConnection, session: int) -> None:
        core = self.core
        while True:
            try:
                raw = await rt.recv_bytes()
            except ConnectionClosed as exc:
                if session == self._session:
                    core.model_closed(isinstance(exc, ConnectionClosedOK), _now())
                    await self._drain()
                return
            if session != self._session:
                return  # replaced while this event was on its way
            now = _now()  # when the event arrived: a barge-in's reaction starts here
            try:
                event = parse_server_event(raw)
            except RealtimeProtocolError as exc:
                core.model_unreadable(exc.reason, now)
            else:
                core.model_event(event, now)
            await self._drain()

    # --- the end -----------------------------------------------------------------------------

    def _begin_shutdown(self, reason: EndReason) -> None:
        self._write_now = None  # nothing more goes to the model but through its tasks
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._shutdown(reason))
            waiters, self._end_waiters = self._end_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _shutdown(self, reason: EndReason) -> None:
        try:
            await self._close(reason)
        finally:
            self.process.call_ended(self)

    async def _close(self, reason: EndReason) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for stop in self._tool_runs.values():
            stop()
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=TASKS_STOP_TIMEOUT_S)
            if stuck:  # the call ends all the same: it must not stay in the roster
                logger.error("%d task(s) did not stop when cancelled", len(stuck))
        if not reason.caller_gone:
            # The caller is still on the line: Twilio asks our `<Connect action>` what
            # to do once the stream closes, and the answer depends on why it ended.
            # The end goes to the database first (the writer wakes for it; bounded).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.recorder.close(), END_RECORD_WAIT_S)
        # Then the caller: hanging up must not wait on the database any longer.
        try:
            await self._twilio.close_stream(reason.close_code)
        except Exception:
            logger.debug("twilio close failed", exc_info=True)
        try:
            await asyncio.wait_for(self.recorder.close(), RECORDS_TIMEOUT_S)
        except TimeoutError:
            logger.error("call records not written within %d s", RECORDS_TIMEOUT_S)
        # The model's socket last: once it closes, the call's record is complete.
        if self._rt is not None:
            await close_quietly(self._rt)
        else:
            discard_model(self._model_opening)
        if reason is EndReason.AGENT_HANGUP:
            await self._complete_call_via_rest()

    async def _complete_call_via_rest(self) -> None:
        if not (self.config.twilio_account_sid and self.config.twilio_auth_token):
            return
        from calls.live.rest import complete_call

        try:
            await asyncio.wait_for(
                asyncio.to_thread(complete_call, self.config, self.call.call_sid), timeout=10
            )
        except Exception:
            logger.warning("could not complete the call through the REST API", exc_info=True)
