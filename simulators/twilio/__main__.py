"""Place one simulated call: `python -m simulators.twilio --local http://127.0.0.1:8000`."""

from __future__ import annotations

import argparse
import asyncio
import logging

from simulators.link import LinkProfile
from simulators.twilio.caller import TwilioCaller
from simulators.twilio.script import CallerScript, Silence, SpeakWhenHeard

logger = logging.getLogger("simulators.twilio")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", default="http://127.0.0.1:8000", help="local server base URL")
    parser.add_argument("--public", default="https://calls.example.test", help="PUBLIC_BASE_URL")
    parser.add_argument("--auth-token", required=True, help="TWILIO_AUTH_TOKEN of the server")
    parser.add_argument("--barge-in-tone", type=int, default=1, help="interrupt this response")
    parser.add_argument("--barge-in-after-ms", type=int, default=1500)
    parser.add_argument("--speech-ms", type=int, default=1000)
    parser.add_argument("--timeout-s", type=float, default=60.0)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay, each way")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="per-message jitter")
    return parser.parse_args()


async def _call(args: argparse.Namespace) -> None:
    script = CallerScript(
        segments=(
            SpeakWhenHeard(args.barge_in_tone, args.barge_in_after_ms, args.speech_ms),
            Silence(5000),
        ),
        hangup="stop",
    )
    caller = TwilioCaller(
        public_base_url=args.public,
        local_base_url=args.local,
        auth_token=args.auth_token,
        script=script,
        uplink=LinkProfile(args.delay_ms, args.jitter_ms),
        downlink=LinkProfile(args.delay_ms, args.jitter_ms),
    )
    try:
        timeline = await caller.run(status_callback=True, timeout_s=args.timeout_s)
    finally:
        await caller.aclose()
    logger.info("heard ms by tone: %s", dict(timeline.heard_ms_by_tone()))
    logger.info("marks echoed: %d, clears: %d", len(timeline.echoed_marks()), len(timeline.clears))
    logger.info("underruns: %d, closed by %s", len(timeline.underruns), timeline.closed_by)
    if trips := timeline.round_trips_ms():
        logger.info("round trips the link gave: %s ms", [round(t) for t in trips])


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_call(_parse()))


if __name__ == "__main__":
    main()
