"""The stand-ins run by hand (`python -m simulators.realtime`, `python -m simulators.twilio`)
make a whole call against the project served as `make serve-dev` serves it, and
fail in one line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from simulators.stack import PROJECT_ROOT, Project, ServerProcess, free_port

SERVE_DEV = Project(PROJECT_ROOT, "config.dev_settings", "config.asgi:application")
# What `make serve-dev` has when the environment sets nothing (config/mode.py).
SERVE_DEV_ENV = {
    "PUBLIC_BASE_URL": "https://localhost:8000",
    "TWILIO_AUTH_TOKEN": "dev-auth-token",
    "AGENT_GREETING": "Hello, thanks for calling.",
}


def _env() -> dict[str, str]:
    """This environment without what would choose the stand-ins' settings for them."""
    chosen = ("PUBLIC_BASE_URL", "TWILIO_AUTH_TOKEN")
    return {key: value for key, value in os.environ.items() if key not in chosen}


async def _module(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args,
        cwd=PROJECT_ROOT,
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _stopped_at_exit(process: asyncio.subprocess.Process) -> AsyncIterator[None]:
    try:
        yield
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _migrated(database: Path) -> str:
    url = f"sqlite:///{database}"
    env = {**_env(), "DJANGO_SETTINGS_MODULE": "config.dev_settings", "DATABASE_URL": url}
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "migrate", "--no-input", "--verbosity", "0",
        cwd=PROJECT_ROOT,
        env=env,
    )  # fmt: skip
    assert await migrate.wait() == 0
    return url


async def test_the_standalone_pair_makes_a_whole_call_and_says_how_it_went(
    tmp_path: Path,
) -> None:
    database_url = await _migrated(tmp_path / "db.sqlite3")
    port = free_port()
    realtime = await _module("simulators.realtime", "--port", str(port), "--sessions", "1")
    async with _stopped_at_exit(realtime):
        assert realtime.stdout is not None
        listening = (await asyncio.wait_for(realtime.stdout.readline(), 10)).decode()
        assert f"OPENAI_WEBSOCKET_BASE_URL=ws://127.0.0.1:{port}/v1" in listening
        server = ServerProcess(
            database_url=database_url,
            realtime_url=f"ws://127.0.0.1:{port}/v1",
            server="uvicorn",
            env=SERVE_DEV_ENV,
            log_path=tmp_path / "server.log",
            project=SERVE_DEV,
        )
        try:
            await server.start()
            # Only the server's address: the rest are serve-dev's defaults.
            twilio = await _module("simulators.twilio", "--local", server.local_base_url)
            async with _stopped_at_exit(twilio):
                out, err = await asyncio.wait_for(twilio.communicate(), 40)
            rt_out, rt_err = await asyncio.wait_for(realtime.communicate(), 10)
        finally:
            await server.stop()

    summary = out.decode()
    assert twilio.returncode == 0, err.decode() + (tmp_path / "server.log").read_text()
    assert summary.startswith("call CA")
    assert "ended by the server" in summary
    # The greeting, the answer (the caller spoke after each), and the goodbye whole.
    assert re.search(r"heard: answer 1 \d+ ms, answer 2 \d+ ms, answer 3 1500 ms", summary)
    assert "spoke 2 times" in summary
    assert "action URL: said nothing; hung up" in summary
    assert realtime.returncode == 0, rt_err.decode()
    session = rt_out.decode()
    assert "session 1 (gpt-realtime): 3 responses (0 cancelled), caller turns 2" in session
    assert "function calls end_call" in session


async def test_a_call_that_cannot_be_made_fails_in_one_line() -> None:
    nobody = free_port()
    twilio = await _module("simulators.twilio", "--local", f"http://127.0.0.1:{nobody}")
    async with _stopped_at_exit(twilio):
        out, err = await asyncio.wait_for(twilio.communicate(), 20)

    assert twilio.returncode == 1
    assert out == b""
    lines = err.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"simulated call failed: cannot reach the server at http://127.0.0.1:{nobody}"
    )


async def test_a_port_taken_fails_in_one_line() -> None:
    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    try:
        realtime = await _module("simulators.realtime", "--port", str(port))
        async with _stopped_at_exit(realtime):
            _, err = await asyncio.wait_for(realtime.communicate(), 20)
    finally:
        taken.close()
        await taken.wait_closed()

    assert realtime.returncode == 1
    lines = err.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"realtime stand-in: cannot listen on 127.0.0.1:{port}")
