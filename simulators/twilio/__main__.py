"""Place one simulated call: `python -m simulators.twilio --local http://127.0.0.1:8000`.

Twilio's side of a whole call against a running server (`make serve-dev`, its
model the Realtime stand-in, with a greeting set): the signed voice webhook, the
media stream, the greeting heard; the caller speaks once each answer has
played (`--speak-after-ms`, one value per answer), and waits for the server to
end the call, following its `<Connect action>` as Twilio does. Prints a short
summary and exits 0 once the call has ended; 1, with one line saying why, if
it could not be made or did not end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from websockets.exceptions import InvalidHandshake

from simulators import signals
from simulators.link import LinkProfile
from simulators.twilio.caller import TwilioCaller
from simulators.twilio.script import CallerScript, Dtmf, Segment, SpeakWhenHeard
from simulators.twilio.timeline import Timeline
from simulators.twilio.webhook import TwimlError

# What `make serve-dev` uses when the environment sets nothing (config/mode.py).
DEV_PUBLIC_BASE_URL = "https://localhost:8000"
DEV_AUTH_TOKEN = "dev-auth-token"


class CallFailed(Exception):
    """The call could not be made, or did not go as a call goes; the message says why."""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.twilio",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--local", default="http://127.0.0.1:8000", help="local server base URL")
    parser.add_argument(
        "--public",
        default=os.environ.get("PUBLIC_BASE_URL") or DEV_PUBLIC_BASE_URL,
        help="the server's PUBLIC_BASE_URL (default: $PUBLIC_BASE_URL, else serve-dev's)",
    )
    parser.add_argument(
        "--auth-token",
        default=os.environ.get("TWILIO_AUTH_TOKEN") or DEV_AUTH_TOKEN,
        help="the server's TWILIO_AUTH_TOKEN (default: $TWILIO_AUTH_TOKEN, else serve-dev's)",
    )
    parser.add_argument(
        "--speak-after-ms",
        type=int,
        nargs="*",
        default=[1800, 2800],
        help="speak once answer N (its tone) has played this long, one value per answer; "
        "shorter than the answer is a barge-in (default: %(default)s)",
    )
    parser.add_argument("--speech-ms", type=int, default=800, help="length of each utterance")
    parser.add_argument("--dtmf", default="", help="keys to press after the last utterance")
    parser.add_argument("--greeting-timeout-s", type=float, default=10.0)
    parser.add_argument("--timeout-s", type=float, default=60.0, help="the whole call at most")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay, each way")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="per-message jitter")
    return parser.parse_args(argv)


def script_from(args: argparse.Namespace) -> CallerScript:
    """Speak after each answer; then stay on the line until the server ends the call."""
    segments: list[Segment] = [
        SpeakWhenHeard(tone, after_ms, args.speech_ms)
        for tone, after_ms in enumerate(args.speak_after_ms, start=1)
    ]
    if args.dtmf:
        segments.append(Dtmf(args.dtmf))
    return CallerScript(segments=tuple(segments), hangup=None)


async def _greeted(caller: TwilioCaller, timeout_s: float) -> bool:
    """Whether the first answer (the greeting) began playing before the call ended or
    `timeout_s` passed; without one the caller, waiting for it, hangs up."""
    timeline = caller.timeline
    try:
        await caller.wait_for(
            lambda: timeline.tone_started_at.get(1) or timeline.closed_at, timeout_s
        )
    except TimeoutError:
        await caller.hangup()
        return False
    return 1 in timeline.tone_started_at


async def place_call(args: argparse.Namespace) -> TwilioCaller:
    """Make the whole call; raise `CallFailed` if it could not be made or did not end."""
    caller = TwilioCaller(
        public_base_url=args.public,
        local_base_url=args.local,
        auth_token=args.auth_token,
        script=script_from(args),
        uplink=LinkProfile(args.delay_ms, args.jitter_ms),
        downlink=LinkProfile(args.delay_ms, args.jitter_ms),
    )
    watch = asyncio.create_task(_greeted(caller, args.greeting_timeout_s))
    try:
        await caller.run(status_callback=True, timeout_s=args.timeout_s)
    except (OSError, TimeoutError, InvalidHandshake, TwimlError) as exc:
        raise CallFailed(_why(args, exc)) from None
    finally:
        watch.cancel()
        await caller.aclose()
    if watch.done() and not watch.cancelled() and not watch.result():
        raise CallFailed(
            f"no greeting within {args.greeting_timeout_s:g} s: is the server's model the "
            "Realtime stand-in, with AGENT_GREETING set?"
        )
    return caller


def _why(args: argparse.Namespace, exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"the call did not end within {args.timeout_s:g} s"
    if isinstance(exc, InvalidHandshake):
        return f"the media stream was refused: {exc}"
    if isinstance(exc, TwimlError):
        return f"the voice webhook at {args.local} did not answer a stream: {exc}"
    return f"cannot reach the server at {args.local}: {exc}"


def summary(caller: TwilioCaller) -> list[str]:
    """What the call was, for a person: how it ended, what was heard and done."""
    timeline = caller.timeline
    started = timeline.webhook_sent_at or 0.0
    ended = timeline.closed_at or started
    lines = [f"call {caller.call_sid}: {_ending(timeline)} after {ended - started:.1f} s"]
    heard = timeline.heard_ms_by_tone()
    tones = ", ".join(f"answer {tone} {ms:.0f} ms" for tone, ms in sorted(heard.items()))
    lines.append(f"heard: {tones or 'nothing'}; underruns {len(timeline.underruns)}")
    over = sum(1 for at in timeline.speech_started_at if _playing(timeline, at))
    keys = "".join(press.digit for press in timeline.dtmf)
    lines.append(
        f"caller: spoke {len(timeline.speech_started_at)} times ({over} over the agent, "
        f"barge-ins cleared {len(timeline.clears)}), keys {keys or 'none'}"
    )
    returned = sum(1 for mark in timeline.echoed_marks() if mark.cleared)
    lines.append(f"marks echoed: {len(timeline.echoed_marks())} ({returned} returned by a clear)")
    lines.append(_action(timeline))
    return lines


def _ending(timeline: Timeline) -> str:
    if timeline.closed_by == "server":
        how = f"ended by the server (close code {timeline.close_code})"
    else:
        how = f"ended by {timeline.closed_by or 'nobody'}"
    if timeline.handovers:
        how += f", {len(timeline.handovers)} handover(s)"
    return how


def _playing(timeline: Timeline, at: float) -> bool:
    return any(
        segment.start <= at < segment.end and segment.tone != signals.SILENCE
        for segment in timeline.heard
    )


def _action(timeline: Timeline) -> str:
    if timeline.action_status is None:
        return "action URL: not requested"
    if timeline.action_status != 200:
        return f"action URL: HTTP {timeline.action_status or 'unreachable'}"
    said = " / ".join(timeline.said) or "nothing"
    then = f"dialed {timeline.dialed}" if timeline.dialed else "hung up"
    return f"action URL: said {said}; {then}"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        caller = asyncio.run(place_call(args))
    except CallFailed as exc:
        sys.stderr.write(f"simulated call failed: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 1
    except Exception as exc:  # a command line says what went wrong in one line
        sys.stderr.write(f"simulated call failed: {type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.write("\n".join(summary(caller)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
