"""Run the Realtime simulator standalone: `python -m simulators.realtime --port 8765`."""

from __future__ import annotations

import argparse
import asyncio
import logging

from simulators.realtime.script import RealtimeScript, Reply
from simulators.realtime.server import RealtimeSimulator

logger = logging.getLogger("simulators.realtime")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--speed", type=float, default=6.0, help="faster-than-real-time factor")
    parser.add_argument(
        "--reply-ms", type=int, nargs="*", default=[2000, 3000], help="audio length per response"
    )
    parser.add_argument("--end-call-after", type=int, default=0, help="reply N calls end_call")
    parser.add_argument("--beta-names", action="store_true")
    return parser.parse_args()


async def _serve(args: argparse.Namespace) -> None:
    replies = tuple(
        Reply(audio_ms=ms, end_call=(n == args.end_call_after))
        for n, ms in enumerate(args.reply_ms, start=1)
    )
    script = RealtimeScript(replies=replies, speed=args.speed)
    async with RealtimeSimulator(lambda: script, port=args.port, beta_names=args.beta_names) as sim:
        logger.info("websocket_base_url=%s", sim.websocket_base_url)
        await asyncio.Event().wait()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(_serve(_parse()))
    except KeyboardInterrupt:
        logger.info("stopped")


if __name__ == "__main__":
    main()
