"""The floor under every call: what the ASGI server costs to receive Twilio's frames at all.

    .venv/bin/python benchmarks/bench_floor.py [--sockets 100] [--seconds 8] [--repeat 3]

Serves `app` below (accepts a WebSocket and drops every message: no Django,
no Channels, no parsing) pinned to CPU 0, and sends it a Twilio-sized media
message every 20 ms on each of `--sockets` connections from a process on the
other core. It prints the server's CPU per socket-second under Uvicorn (with
uvloop, what `make serve` runs), Uvicorn on the stdlib loop, and Daphne.
Whatever a call costs beyond this figure is the project's own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI WebSocket app that accepts and ignores everything."""
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.disconnect":
            return


SERVERS = {
    "uvicorn (uvloop)": ["-m", "uvicorn", "benchmarks.bench_floor:app", "--loop", "uvloop"],
    "uvicorn (asyncio)": ["-m", "uvicorn", "benchmarks.bench_floor:app", "--loop", "asyncio"],
    "daphne": ["-m", "daphne", "benchmarks.bench_floor:app"],
}


async def measure(server: list[str], sockets: int, seconds: float) -> float:
    from benchmarks.procstat import tree_cpu_s
    from simulators.stack import free_port
    from simulators.wsclient import WebSocketClient

    port = free_port()
    args = (
        [*server, "--port", str(port)]
        if "uvicorn" in server
        else [*server[:2], "-p", str(port), server[2]]
    )
    if "uvicorn" in server:
        args += ["--log-level", "warning", "--ws-per-message-deflate", "false"]
    process = await asyncio.create_subprocess_exec(
        "taskset", "-c", "0", sys.executable, *args,
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        clients = []
        deadline = time.monotonic() + 20
        while not clients:
            try:
                clients.append(await WebSocketClient.connect(f"ws://127.0.0.1:{port}/", headers={}))
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)  # the server is still starting: poll its port, bounded
        clients += [
            await WebSocketClient.connect(f"ws://127.0.0.1:{port}/", headers={})
            for _ in range(sockets - 1)
        ]
        payload = base64.b64encode(b"\xff" * 160).decode()
        text = json.dumps(
            {
                "event": "media",
                "sequenceNumber": "3",
                "streamSid": "MZ" + "0" * 32,
                "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": payload},
            }
        )
        loop = asyncio.get_running_loop()

        def tick(group: int, start: float, k: int) -> None:
            for client in clients[group::10]:
                client.send_text(text)
            loop.call_at(start + (k + 1) * 0.02, tick, group, start, k + 1)

        start = loop.time()
        for group in range(10):  # ten groups, 2 ms apart: frames arrive spread out, as Twilio's do
            loop.call_at(start + group * 0.002, tick, group, start + group * 0.002, 0)
        await asyncio.sleep(2)
        cpu0, t0 = tree_cpu_s(process.pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, t1 = tree_cpu_s(process.pid), time.monotonic()
        return 1000 * (cpu1 - cpu0) / ((t1 - t0) * sockets)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import uvloop

    print(f"{args.sockets} sockets, a 160-byte media message every 20 ms each, server on CPU 0:")
    for name, server in SERVERS.items():
        runs = [uvloop.run(measure(server, args.sockets, args.seconds)) for _ in range(args.repeat)]
        print(f"  {name:<18} {statistics.median(runs):5.2f} ms per socket-second (median of "
              f"{args.repeat}: {', '.join(f'{r:.2f}' for r in runs)})")  # fmt: skip


if __name__ == "__main__":
    main()
