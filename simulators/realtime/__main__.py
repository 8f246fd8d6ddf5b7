"""Run the Realtime stand-in on its own: `python -m simulators.realtime --port 8765`.

Point a server at it (`OPENAI_WEBSOCKET_BASE_URL=ws://127.0.0.1:8765/v1`). By
default each session's first response is a greeting, the next answers the
caller's turn, and the third says goodbye and calls `end_call`, so a call ends
by itself. A summary line is printed as each session closes; `--sessions N`
exits after N of them, otherwise it serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from simulators.realtime.script import RealtimeScript, Reply
from simulators.realtime.server import RealtimeSimulator
from simulators.realtime.session import RealtimeSession

logger = logging.getLogger("simulators.realtime")

# (audio ms, words) of the default responses: a greeting, an answer, a goodbye.
DEFAULT_REPLIES = (
    (1500, "Hello, thanks for calling. How can I help you today?"),
    (2500, "Sure. Your order shipped yesterday and arrives tomorrow. Anything else?"),
    (1500, "Thanks for calling. Goodbye!"),
)
_WAIT_S = 3600.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.realtime",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--speed", type=float, default=6.0, help="faster-than-real-time factor")
    parser.add_argument(
        "--reply-ms",
        type=int,
        nargs="*",
        default=[ms for ms, _ in DEFAULT_REPLIES],
        help="audio length of each response, in order (default: %(default)s)",
    )
    parser.add_argument(
        "--end-call-after",
        type=int,
        default=len(DEFAULT_REPLIES),
        help="response N also calls end_call (0: none; default: %(default)s)",
    )
    parser.add_argument("--beta-names", action="store_true", help="the older beta event names")
    parser.add_argument(
        "--sessions", type=int, default=0, help="exit after this many sessions closed (0: never)"
    )
    parser.add_argument("--verbose", action="store_true", help="log each session's events")
    return parser.parse_args(argv)


def script_from(args: argparse.Namespace) -> RealtimeScript:
    """The script every session follows."""
    replies = tuple(
        Reply(
            audio_ms=ms,
            transcript=_words(number),
            end_call=(number == args.end_call_after),
        )
        for number, ms in enumerate(args.reply_ms, start=1)
    )
    return RealtimeScript(replies=replies, speed=args.speed)


def _words(number: int) -> str:
    if number <= len(DEFAULT_REPLIES):
        return DEFAULT_REPLIES[number - 1][1]
    return f"This is simulated reply {number}."


def session_summary(number: int, session: RealtimeSession) -> str:
    """One line on what a closed session did."""
    responses = session.responses
    cancelled = sum(1 for run in responses if run.status == "cancelled")
    recording = session.recording
    called = [str(e["name"]) for e in recording.sent_of("response.function_call_arguments.done")]
    outputs = len(recording.function_call_outputs())
    truncates = len(recording.received_of("conversation.item.truncate"))
    caller_ms = recording.input_audio_bytes // 8
    return (
        f"session {number} ({session.model}): {len(responses)} responses "
        f"({cancelled} cancelled), caller turns {session.caller_turns}, "
        f"function calls {', '.join(called) or 'none'}, outputs received {outputs}, "
        f"truncates {truncates}, caller audio {caller_ms} ms, "
        f"tools {', '.join(recording.tool_names()) or 'none'}"
    )


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def serve(args: argparse.Namespace) -> None:
    """Serve until `args.sessions` sessions have closed (forever if 0)."""
    script = script_from(args)
    simulator = RealtimeSimulator(
        lambda: script, host=args.host, port=args.port, beta_names=args.beta_names
    )
    async with simulator as sim:
        _say(f"realtime stand-in listening: OPENAI_WEBSOCKET_BASE_URL={sim.websocket_base_url}")
        reported = 0

        def next_closed() -> RealtimeSession | None:
            if len(sim.sessions) > reported and sim.sessions[reported].closed:
                return sim.sessions[reported]
            return None

        while not args.sessions or reported < args.sessions:
            try:
                session = await sim.wait_for(next_closed, _WAIT_S)
            except TimeoutError:
                continue
            reported += 1
            _say(session_summary(reported, session))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    if not args.verbose:
        # A client that is not a WebSocket one (a browser, a probe) is no news here.
        logging.getLogger("websockets").setLevel(logging.CRITICAL)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        sys.stderr.write(f"realtime stand-in: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
