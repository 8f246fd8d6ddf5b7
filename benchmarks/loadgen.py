"""Load-generator processes for `bench_calls.py`: simulated callers, and the Realtime stand-in.

    python -m benchmarks.loadgen realtime --port P --results F [--goodbye-every 4]
    python -m benchmarks.loadgen callers --base-url URL --calls N --results F [--seconds 8]

Each runs in a process of its own, never in the server's, so the server's CPU
figures are the server's alone; `bench_calls.py` reads every generator's CPU
from /proc and refuses to report figures when one of them ran out of core.
Several Realtime processes may serve one port (SO_REUSEPORT). Results are
written as JSON with times from `time.monotonic()`, which is one clock for
every process on the machine (CLOCK_MONOTONIC), so evidence from the callers
and from the Realtime stand-in can be compared directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from simulators.realtime import RealtimeScript, RealtimeSimulator, Reply, ToolCall  # noqa: E402
from simulators.scenarios import GREETING  # noqa: E402
from simulators.stack import AUTH_TOKEN, PUBLIC_BASE_URL  # noqa: E402
from simulators.twilio import CallerScript, Silence, SpeakWhenHeard, TwilioCaller  # noqa: E402

GREETING_MS = 4000
BARGE_IN_AFTER_MS = 2500  # into the greeting: the model finished sending it long before
SPEECH_MS = 700
ANSWER_MS = 2000
TOOL_CHECK_MS = 600
GREETING_TONE = 1
ANSWER_TONE = 2


class LoopLag:
    """How late this process's event loop wakes: a stalled generator delays its evidence."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.lags_ms: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.lags_ms.append((loop.time() - planned) * 1000)

    def p99_ms(self) -> float:
        ordered = sorted(self.lags_ms)
        return ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0


# --- The Realtime stand-in ------------------------------------------------------------------


# With `--tools`: the answer calls one of these (`benchmarks.agents`), alternately.
BENCH_TOOLS = ("bench_lookup", "bench_lookup_async")


def realtime_script(index: int, goodbye_every: int, tools: bool = False) -> RealtimeScript:
    goodbye = goodbye_every > 0 and index % goodbye_every == goodbye_every - 1
    answer = "Your booking is confirmed. Goodbye!" if goodbye else "Sure, it is open until six."
    replies = (Reply(GREETING_MS, GREETING), Reply(ANSWER_MS, answer, end_call=goodbye))
    if tools:
        # The answer is a short "let me check" and a tool call; its result is answered.
        lookup = ToolCall(BENCH_TOOLS[index % 2], {"order_number": str(index)})
        check = Reply(TOOL_CHECK_MS, "Let me check.", tool_calls=(lookup,))
        replies = (replies[0], check, Reply(ANSWER_MS, answer, end_call=goodbye))
    return RealtimeScript(replies=replies, seed=index)  # varied delta sizes from call to call


def session_evidence(sim: RealtimeSimulator) -> list[dict[str, Any]]:
    """Per session: its id, when the greeting was asked for, when speech_started went out."""
    out = []
    for session in sim.sessions:
        recording = session.recording
        # The first `response.create` is the greeting's: the call's session is ready.
        requests = [r.at for r in recording.received if r.type == "response.create"]
        speech = [r.at for r in recording.sent if r.type == "input_audio_buffer.speech_started"]
        truncates = recording.received_of("conversation.item.truncate")
        arguments_done = [
            r.at for r in recording.sent if r.type == "response.function_call_arguments.done"
        ]
        creates = [r.at for r in recording.received if r.type == "response.create"]
        tools = [
            {
                "arguments_done_at": arguments_done[0] if arguments_done else None,
                "output_at": output.at,
                "result": output.output,
                # The answer asked for once the result was in.
                "create_at": next((at for at in creates if at >= output.at), None),
            }
            for output in recording.function_call_outputs()
        ]
        out.append(
            {
                "session_id": session.session.get("id", ""),
                "greeting_requested_at": requests[0] if requests else None,
                "speech_started_at": speech,
                "truncate_audio_end_ms": [t.get("audio_end_ms") for t in truncates],
                "cancels": len(recording.received_of("response.cancel")),
                "tools": tools,
                "closed": session.closed,
            }
        )
    return out


async def serve_realtime(args: argparse.Namespace) -> dict[str, Any]:
    counter = iter(range(args.first_index, 1 << 30))
    sim = RealtimeSimulator(
        script_factory=lambda: realtime_script(next(counter), args.goodbye_every, args.tools),
        port=args.port,
        keep_input_audio=False,
        reuse_port=True,
        handshake_delay_ms=args.handshake_delay_ms,
    )
    lag = LoopLag()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with sim:
        watcher = asyncio.create_task(lag.run())
        print("ready", flush=True)
        await stop.wait()
        watcher.cancel()
        evidence = session_evidence(sim)
    return {"sessions": evidence, "loop_lag_p99_ms": lag.p99_ms()}


# --- The callers ----------------------------------------------------------------------------


def caller_script(seconds: float) -> CallerScript:
    # The rest of the call after the greeting's start, the barge-in and the speech;
    # long enough for the answer (or goodbye) to play out whatever `seconds` says.
    rest_ms = max(round(seconds * 1000) - BARGE_IN_AFTER_MS - SPEECH_MS - 300, ANSWER_MS + 2500)
    return CallerScript(
        segments=(
            SpeakWhenHeard(tone=GREETING_TONE, after_ms=BARGE_IN_AFTER_MS, speech_ms=SPEECH_MS),
            Silence(rest_ms),
        ),
        hangup="stop",
    )


def call_evidence(caller: TwilioCaller, error: str) -> dict[str, Any]:
    timeline = caller.timeline
    return {
        "call_sid": caller.call_sid,
        "error": error,
        "webhook_sent_at": timeline.webhook_sent_at,
        "webhook_answered_at": timeline.webhook_answered_at,
        "start_sent_at": timeline.stream_started_at,
        "closed_at": timeline.closed_at,
        "closed_by": timeline.closed_by,
        "clears_at": [clear.at for clear in timeline.clears],
        "heard_ms": {str(tone): ms for tone, ms in timeline.heard_ms_by_tone().items()},
        "speech_started_at": timeline.speech_started_at,
        "underruns": [
            {
                "at": gap.at,
                "gap_ms": gap.gap_ms,
                "tone": gap.tone,
                "into_ms": (gap.at - timeline.tone_started_at.get(gap.tone, gap.at)) * 1000,
            }
            for gap in timeline.underruns
        ],
        "answer_last_heard_at": timeline.last_heard(ANSWER_TONE),
        "greeting_last_heard_at": timeline.last_heard(GREETING_TONE),
    }


async def one_call(
    args: argparse.Namespace, script: CallerScript, delay_s: float
) -> dict[str, Any]:
    await asyncio.sleep(delay_s)  # calls arrive spread over --ramp-s
    caller = TwilioCaller(
        public_base_url=PUBLIC_BASE_URL,
        local_base_url=args.base_url,
        auth_token=AUTH_TOKEN,
        script=script,
        stream_connect_ms=args.stream_connect_ms,
    )
    error = ""
    try:
        await caller.run(timeout_s=args.seconds + 30)
    except Exception as exc:  # one failed call is a figure, not the end of the run
        error = f"{type(exc).__name__}: {exc}"
    finally:
        await caller.aclose()
    return call_evidence(caller, error)


async def run_callers(args: argparse.Namespace) -> dict[str, Any]:
    lag = LoopLag()
    watcher = asyncio.create_task(lag.run())
    script = caller_script(args.seconds)
    started, cpu_before = time.monotonic(), _cpu_s()
    # This process's share of the arrivals: every `processes`-th of them, from `first`.
    step = args.ramp_s / max(1, args.total_calls)
    delays = [(args.first_call + i * args.processes) * step for i in range(args.calls)]
    calls = await asyncio.gather(*(one_call(args, script, delay) for delay in delays))
    watcher.cancel()
    return {
        "calls": calls,
        "started_at": started,
        "ended_at": time.monotonic(),
        "cpu_s": _cpu_s() - cpu_before,
        "loop_lag_p99_ms": lag.p99_ms(),
    }


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="role", required=True)
    rt = sub.add_parser("realtime")
    rt.add_argument("--port", type=int, required=True)
    rt.add_argument("--results", required=True)
    rt.add_argument("--goodbye-every", type=int, default=4)
    rt.add_argument("--first-index", type=int, default=0)
    rt.add_argument("--handshake-delay-ms", type=float, default=0.0)
    rt.add_argument("--tools", action="store_true", help="answers call a tool (benchmarks.agents)")
    callers = sub.add_parser("callers")
    callers.add_argument("--base-url", required=True)
    callers.add_argument("--calls", type=int, required=True)
    callers.add_argument("--results", required=True)
    callers.add_argument("--seconds", type=float, default=8.0)
    callers.add_argument("--ramp-s", type=float, default=0.0, help="arrivals spread over this")
    callers.add_argument("--total-calls", type=int, default=1)
    callers.add_argument("--first-call", type=int, default=0)
    callers.add_argument("--processes", type=int, default=1)
    callers.add_argument("--stream-connect-ms", type=float, default=0.0)
    args = parser.parse_args()
    # The simulators narrate every call at INFO; only problems matter here.
    logging.basicConfig(level=logging.WARNING)
    # uvloop: a cheaper event loop, so the generator stays far from its core's limit.
    # The simulators stamp every event with time.monotonic(), never the loop's
    # (millisecond) clock, so the evidence keeps its precision.
    with contextlib.suppress(KeyboardInterrupt):
        work = serve_realtime(args) if args.role == "realtime" else run_callers(args)
        Path(args.results).write_text(json.dumps(uvloop.run(work)))


if __name__ == "__main__":
    main()
