"""The model's calls of host tools: which run, which were cut off, and the silence while they run.

The shell runs a tool (`RunTool`) and reports what it came to (`ToolResult`);
this keeps the calls under way, decides what a cut-off answer's call comes
to, and times the holding line: while a tool runs and the caller hears
nothing (no AI audio playing or on its way, the caller not speaking, no
answer asked for), after `hold_after_ms` of that silence the AI is asked
for a few words, and again after each such silence, so a slow tool never
leaves the caller wondering whether anyone is there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from callcore.outputs import Output, Record, RunTool, ToModel
from callcore.protocol import realtime as rt
from callcore.records import RecordKind

# What a tool call came to (a `tool_call` record's `outcome`).
OK = "ok"
ERROR = "error"  # the tool raised
TIMEOUT = "timeout"
INVALID_ARGUMENTS = "invalid_arguments"
UNKNOWN_TOOL = "unknown_tool"  # not one the call's agent may use
NOT_RUN = "not_run"  # its answer was cut off by the caller before it was complete
ABANDONED = "abandoned"  # the call ended while it ran

# Told to the model for the call of an answer the caller cut off.
NOT_RUN_OUTPUT = json.dumps(
    {"error": "Not run: the caller spoke before your answer was heard. Do it only if "
     "they still want it."}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What running a tool came to; times are monotonic seconds, measured by the shell.

    `output` is the JSON text the model gets; `arguments`, what the call's
    record may show of the model's arguments (the host's redaction);
    `started_at`, when the function began (None: it never ran);
    `returned_at`, when it returned, raised or was given up on.
    """

    call_id: str
    outcome: str
    output: str
    arguments: dict[str, Any]
    returned_at: float
    started_at: float | None = None
    error: str = ""


@dataclass(slots=True)
class _Running:
    name: str
    arguments: str
    asked_at: float
    caller_spoke: bool = False
    # Asked by a session since replaced: its output has no call to answer any more.
    orphaned: bool = False


class ToolCalls:
    """The call's tool calls under way, and the holding line's timing; durations in ms.

    Every function call id the model made (but end_call's, the goodbye's) is
    answered here once: run, refused or cut off.
    """

    def __init__(self, hold_after_ms: int, hold_instructions: str, max_holds: int = 5) -> None:
        self.hold_after_ms = hold_after_ms
        self.hold_instructions = hold_instructions
        # Holding lines per stretch of tools under way: past it, the caller waits in
        # silence (a tool's timeout bounds the wait).
        self.max_holds = max_holds
        self._running: dict[str, _Running] = {}
        self._taken: set[str] = set()
        # Since when the caller has heard nothing while a tool runs (None: not silent).
        self._quiet_since: float | None = None
        self.holds = 0

    @property
    def running(self) -> bool:
        return bool(self._running)

    def take(self, call_id: str) -> bool:
        """Whether this call id is new (each is acted on once, from either event)."""
        if call_id in self._taken:
            return False
        self._taken.add(call_id)
        return True

    def asked(self, call: rt.FunctionCallDone, now: float) -> RunTool:
        """A complete call of a live answer: run it."""
        if not self._running:
            self.holds = 0
        self._running[call.call_id] = _Running(call.name, call.arguments, now)
        return RunTool(call.call_id, call.name, call.arguments, now)

    def cut_off(self, call: rt.FunctionCallDone, now: float, status: str) -> list[Output]:
        """A call of an answer the caller interrupted: not run, and the model told so.

        The caller never heard the AI say it would act, and is saying
        something else: the model's answer to them decides again.
        """
        details = _details(call, NOT_RUN, "the caller interrupted the answer that called it")
        details["caller_spoke"] = True
        return [
            ToModel(rt.function_call_output(call.call_id, NOT_RUN_OUTPUT)),
            Record(RecordKind.TOOL_CALL, now, status, details),
        ]

    def refused(
        self,
        call: rt.FunctionCallDone,
        arguments: dict[str, Any],
        error: str,
        now: float,
        status: str,
    ) -> list[Output]:
        """A call the bridge itself refuses (a transfer to no such target): the model is
        told why, to try again or say so."""
        details = _details(call, INVALID_ARGUMENTS, error)
        details.update(arguments=arguments, answer_asked=True)
        return [
            ToModel(rt.function_call_output(call.call_id, {"error": error})),
            Record(RecordKind.TOOL_CALL, now, status, details),
        ]

    def abandoned(self, now: float, status: str, end_reason: str) -> list[Output]:
        """The call ends with tools under way: each one's record (a sync tool's thread
        runs on to its end; nobody hears its result)."""
        out: list[Output] = []
        for call_id, run in self._running.items():
            call = rt.FunctionCallDone("", call_id, run.name, run.arguments)
            details = _details(call, ABANDONED, f"the call ended ({end_reason}) while it ran")
            details["caller_spoke"] = run.caller_spoke
            details["duration_ms"] = round((now - run.asked_at) * 1000)
            out.append(Record(RecordKind.TOOL_CALL, now, status, details))
        self._running.clear()
        self._quiet_since = None
        return out

    def caller_spoke(self) -> None:
        for run in self._running.values():
            run.caller_spoke = True

    def finished(
        self, result: ToolResult, now: float, status: str, offset_ms: int, answer_asked: bool
    ) -> list[Output]:
        """A tool's result: its output for the model, and its record (nothing if unknown).

        Whether an answer is asked for is the caller's (`CallCore`) to decide
        and say (`answer_asked`): it must know first that this was the last
        call running (`settle`).
        """
        run = self._running.pop(result.call_id, None)
        if run is None:
            return []
        if not self._running:
            self._quiet_since = None
        started = result.started_at or 0.0
        timed = result.started_at is not None
        details = {
            "call_id": result.call_id,
            "name": run.name,
            "arguments": result.arguments,
            "outcome": result.outcome,
            "error": result.error,
            "duration_ms": round((result.returned_at - started) * 1000) if timed else 0,
            "started_offset_ms": offset_ms,
            "dispatch_ms": round((started - run.asked_at) * 1000, 3) if timed else None,
            "reply_ms": round((now - result.returned_at) * 1000, 3),
            "caller_spoke": run.caller_spoke,
            "answer_asked": answer_asked,
        }
        record = Record(RecordKind.TOOL_CALL, now, status, details)
        output = ToModel(rt.function_call_output(result.call_id, result.output))
        if not run.orphaned:
            return [output, record]
        # The session that made the call was replaced: the new one is told the call
        # (its conversation so far is words only) and then its result.
        details["session_replaced"] = True
        made = ToModel(rt.function_call_item(result.call_id, run.name, run.arguments))
        return [made, output, record]

    def is_running(self, call_id: str) -> bool:
        return call_id in self._running

    def orphaned(self, call_id: str) -> bool:
        run = self._running.get(call_id)
        return run is not None and run.orphaned

    def others_running(self, call_id: str) -> bool:
        """Whether a call other than `call_id` is still under way."""
        return any(key != call_id for key in self._running)

    # --- the holding line --------------------------------------------------------------------

    def heard(self, now: float, busy: bool, since: float | None = None) -> None:
        """What the caller hears now: `busy` if anything is playing, on its way, or said by
        them. The silence a holding line ends is counted from when that stopped
        (`since`, if it is known to have stopped earlier than `now`; never before
        the latest tool call began)."""
        if busy or not self._running:
            self._quiet_since = None
        elif self._quiet_since is None:
            began = max(run.asked_at for run in self._running.values())
            self._quiet_since = max(began, min(now, since if since is not None else now))

    @property
    def hold_at(self) -> float | None:
        """When a holding line is due (monotonic s), if a tool runs in silence."""
        if self._quiet_since is None or self.holds >= self.max_holds:
            return None
        return self._quiet_since + self.hold_after_ms / 1000

    def hold(self, now: float, status: str) -> Record | None:
        """The holding line's record, if one is due now (the caller asks for it)."""
        at = self.hold_at
        if at is None or now < at or self.holds >= self.max_holds:
            return None
        silent_ms = round((now - (self._quiet_since or now)) * 1000)
        # Not again until the holding line has been heard and silence came back.
        self._quiet_since = None
        self.holds += 1
        details = {"call_ids": list(self._running), "silent_ms": silent_ms, "holds": self.holds}
        return Record(RecordKind.TOOL_HOLD, now, status, details)

    def orphan(self) -> None:
        """A new model session: the calls under way belong to the old one's conversation.

        They finish and are recorded (the caller still waits for them: the
        holding line goes on), but their outputs have no call to answer there.
        """
        for run in self._running.values():
            run.orphaned = True


def _details(call: rt.FunctionCallDone, outcome: str, error: str) -> dict[str, Any]:
    """A `tool_call` record's details for a call that did not run."""
    return {
        "call_id": call.call_id,
        "name": call.name,
        "arguments": {},
        "outcome": outcome,
        "error": error,
        "duration_ms": 0,
        "caller_spoke": False,
        "answer_asked": False,
    }
