"""The whole call stack on this machine: a project under a real ASGI server, plus the sims.

A Django project's ASGI application runs in a child process (`ServerProcess`)
under Daphne or Uvicorn. `LocalStack` adds a Realtime simulator in this
process; each new Realtime connection takes the next queued script, so
scenarios run one after another against one server. Callers are
`TwilioCaller`s pointed at the child.

The project is this repository's reference host (`REFERENCE`, production
settings read from the environment) or any host that installed the
platform (`Project.running()`, the one `manage.py simulate_call` runs in).
The child learns where its stand-ins are from environment variables; a
host's test settings take them with `calls.demo.standins.stand_in_settings()`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import logging
import os
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from simulators.realtime import RealtimeScript, RealtimeSimulator
from simulators.twilio import CallerScript, TwilioCaller

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PUBLIC_BASE_URL = "https://calls.simulated.test"
AUTH_TOKEN = "simulated-twilio-auth-token"
Server = Literal["daphne", "uvicorn"]
# The child's settings the stack chose, as one JSON object of strings: the
# reference host reads each from its own variable, any other host's test
# settings take them all with `calls.demo.standins.stand_in_settings()`.
STAND_INS_VARIABLE = "CALLBRIDGE_STAND_INS"
STAND_IN_KEYS = (
    "PUBLIC_BASE_URL",
    "TWILIO_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_WEBSOCKET_BASE_URL",
)


@dataclass(frozen=True)
class Project:
    """A Django project to serve: its directory, settings module and ASGI application.

    `collect_static`: its settings serve the admin only from collected files
    (the reference host's production settings), so the stack collects them
    first. `lifespan` is Uvicorn's `--lifespan` (an earlier checkout, a
    benchmark's before, may predate the platform's lifespan: `auto`).
    """

    root: Path
    settings_module: str
    asgi_app: str
    collect_static: bool = False
    lifespan: str = "on"

    @classmethod
    def running(cls) -> Project:
        """The project this process runs, from the current directory (`manage.py`'s).

        The reference host's development settings serve its production ones:
        the server under test is the one that would take real calls.
        """
        from django.conf import settings

        chosen = os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE
        if chosen == "config.dev_settings" and _is_reference_checkout():
            return REFERENCE
        application = getattr(settings, "ASGI_APPLICATION", None)
        if not application:
            raise StackError("ASGI_APPLICATION is not set: the stack serves the project by it")
        module, _, attribute = str(application).rpartition(".")
        return cls(Path.cwd(), str(chosen), f"{module}:{attribute}")

    def checkout(self, root: Path) -> Project:
        """The same project in another checkout (a before/after): lifespan as it has it."""
        return Project(root, self.settings_module, self.asgi_app, self.collect_static, "auto")


def _is_reference_checkout() -> bool:
    return (PROJECT_ROOT / "config" / "dev_settings.py").exists()


REFERENCE = Project(PROJECT_ROOT, "config.settings", "config.asgi:application", True)


def default_project() -> Project:
    """This repository's reference host in its checkout; installed, the project running."""
    return REFERENCE if _is_reference_checkout() else Project.running()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def collected_static(project: Project, env: Mapping[str, str]) -> Path:
    """The admin's static files as `make serve` collects them, once per machine and version.

    Collected into a temporary directory, then renamed into place: a run that
    stops half-way leaves nothing another run would take for complete.
    """
    versions = "-".join(metadata.version(name) for name in ("django", "whitenoise"))
    target = Path(tempfile.gettempdir()) / f"callbridge-static-{versions}-{os.getuid()}"
    if (target / "staticfiles.json").exists():
        return target
    scratch = Path(tempfile.mkdtemp(prefix="callbridge-static-"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0",
        cwd=project.root,
        env={**env, "DJANGO_STATIC_ROOT": str(scratch)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise StackError(f"collectstatic failed: {stderr.decode(errors='replace')[-500:]}")
    with contextlib.suppress(OSError):  # another run got there first: theirs is as good
        os.rename(scratch, target)
    return target


class StackError(RuntimeError):
    """The server process did not start or died; the message says where its log is."""


class ServerProcess:
    """`project` under `server` in a child process on a free port, set up from `env` only.

    `realtime_url` is the Realtime endpoint it talks to (the SDK's
    `websocket_base_url`). `cpus` (a `taskset` list such as "0") pins it, so a
    benchmark can measure what one core holds while its load runs elsewhere.
    `root` is the checkout of the reference host it runs from (another
    commit's, for a before/after); `project` names any other.
    """

    def __init__(
        self,
        *,
        database_url: str,
        realtime_url: str,
        server: Server = "daphne",
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        cpus: str | None = None,
        root: Path | None = None,
        project: Project | None = None,
    ) -> None:
        project = project or default_project()
        self.project = project if root is None or root == project.root else project.checkout(root)
        self.database_url = database_url
        self.realtime_url = realtime_url
        self.server = server
        self.extra_env = dict(env or {})
        self.cpus = cpus
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._log_path = log_path
        self._log_file: Any = None
        # A fresh key per server: production settings refuse the development one.
        self._secret_key = secrets.token_urlsafe(48)

    @property
    def local_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def child_env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OPENAI_", "TWILIO_", "AGENT_", "DATABASE_URL", "DJANGO_"))
        }
        env.update(
            {
                # Production settings, complete: the server under test is the one that
                # would take real calls, only its peers are stand-ins.
                "DJANGO_SETTINGS_MODULE": self.project.settings_module,
                "DJANGO_SECRET_KEY": self._secret_key,
                "DATABASE_URL": self.database_url,
                "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "OPENAI_API_KEY": "sk-simulated",
                "OPENAI_WEBSOCKET_BASE_URL": self.realtime_url,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        chosen = (
            "PUBLIC_BASE_URL",
            "TWILIO_AUTH_TOKEN",
            "OPENAI_API_KEY",
            "OPENAI_WEBSOCKET_BASE_URL",
        )
        env[STAND_INS_VARIABLE] = json.dumps(
            {**{key: env[key] for key in chosen}, **self.extra_env}, sort_keys=True
        )
        return env

    def command(self) -> list[str]:
        if self.server == "uvicorn":
            command = [
                sys.executable, "-m", "uvicorn", self.project.asgi_app,
                "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "warning", "--no-access-log",
                "--lifespan", self.project.lifespan,
                "--ws-per-message-deflate", "false",
            ]  # fmt: skip
        else:
            command = [
                sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                self.project.asgi_app,
            ]  # fmt: skip
        return ["taskset", "-c", self.cpus, *command] if self.cpus else command

    async def start(self, timeout_s: float = 30.0) -> None:
        self.port = free_port()
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix=f"callbridge-{self.server}-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        self._log_file = self._log_path.open("wb")
        env = self.child_env()
        if self.project.collect_static and "DJANGO_STATIC_ROOT" not in env:
            # Production settings serve the admin only from collected files.
            env["DJANGO_STATIC_ROOT"] = str(await collected_static(self.project, env))
        self._process = await asyncio.create_subprocess_exec(
            *self.command(),
            cwd=self.project.root,
            env=env,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
        await self._wait_listening(timeout_s)

    async def _wait_listening(self, timeout_s: float) -> None:
        # Start-up of another process has no event to await: poll its port, bounded.
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.returncode is not None:
                raise StackError(f"{self.server} exited at start-up; see {self._log_path}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise StackError(
            f"{self.server} did not listen within {timeout_s:.0f} s; see {self._log_path}"
        )

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


_frozen_depth = 0
"""How many `frozen_heap` are open in this process."""


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """What this process holds on entry is frozen out of the garbage collector's reach
    until the exit, so the stand-ins here keep the wire's timing meanwhile.

    A full collection walks every object the process holds, and with Django and the
    SDKs loaded that is 190,000 objects or more: one took 104 to 119 ms under
    `tests/e2e/test_turns.py`, and every simulated caller stood still meanwhile. Their
    frames went out that late together, so a server read a sound's end late and
    resumed an answer late (a 350 ms "mm-hmm" heard a 260 to 310 ms gap). Frozen, a
    collection walks only what was made since, and none took 10 ms.

    Nested (a `simulate_call` scenario inside an end-to-end test), the outermost one
    freezes and unfreezes. Its exit unfreezes all there is, whatever froze it (the
    collector cannot tell): for a process of stand-ins, never a server's (the server
    freezes its own at start-up, `calls.asgi`).
    """
    global _frozen_depth
    if _frozen_depth == 0:
        gc.collect()
        gc.freeze()
    _frozen_depth += 1
    try:
        yield
    finally:
        _frozen_depth -= 1
        if _frozen_depth == 0:
            gc.unfreeze()


class LocalStack:
    """Runs the project under `server` on a free port, with a Realtime simulator here.

    `database_url` must name a database both processes can open (a SQLite
    file, or PostgreSQL). `env` adds settings for the child (for example
    `AGENT_GREETING`).
    """

    def __init__(
        self,
        *,
        database_url: str,
        server: Server = "daphne",
        env: Mapping[str, str] | None = None,
        default_script: RealtimeScript | None = None,
        log_path: Path | None = None,
        project: Project | None = None,
    ) -> None:
        self.default_script = default_script or RealtimeScript()
        self.realtime = RealtimeSimulator(script_factory=self._next_script)
        self._scripts: collections.deque[RealtimeScript] = collections.deque()
        self._server = ServerProcess(
            database_url=database_url,
            realtime_url="",
            server=server,
            env=env,
            log_path=log_path,
            project=project,
        )
        # Every server process on the stack's database: the first, then `add_server`.
        self.servers: list[ServerProcess] = [self._server]

    @property
    def server(self) -> Server:
        return self._server.server

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def local_base_url(self) -> str:
        return self._server.local_base_url

    @property
    def log_path(self) -> Path | None:
        return self._server.log_path

    @property
    def pid(self) -> int | None:
        return self._server.pid

    def queue_script(self, script: RealtimeScript) -> None:
        """The next Realtime connection will follow `script`."""
        self._scripts.append(script)

    async def stop_server(self) -> None:
        """SIGTERM the server and wait for it to exit, as a deploy stops it."""
        await self._server.stop()

    @property
    def queued_scripts(self) -> int:
        """Scripts queued and not yet taken by a connection."""
        return len(self._scripts)

    def drop_queued_scripts(self) -> None:
        """Scripts queued for connections that never came (a scenario's unused replacements)."""
        self._scripts.clear()

    def _next_script(self) -> RealtimeScript:
        return self._scripts.popleft() if self._scripts else self.default_script

    async def add_server(self, timeout_s: float = 30.0) -> ServerProcess:
        """Another process of the same project on the same database and Realtime stand-in
        (and the same Redis, when REDIS_URL is set): a second worker or host."""
        first = self._server
        server = ServerProcess(
            database_url=first.database_url,
            realtime_url=first.realtime_url,
            server=first.server,
            env=first.extra_env,
            project=first.project,
        )
        self.servers.append(server)
        await server.start(timeout_s)
        return server

    async def kill_server(self, index: int) -> None:
        """SIGKILL server `index`: a process that dies with its calls."""
        await self.servers[index].kill()

    def caller(self, script: CallerScript, server_index: int = 0, **options: Any) -> TwilioCaller:
        return TwilioCaller(
            public_base_url=PUBLIC_BASE_URL,
            local_base_url=self.servers[server_index].local_base_url,
            auth_token=AUTH_TOKEN,
            script=script,
            **options,
        )

    async def start(self, timeout_s: float = 30.0) -> None:
        await self.realtime.start()
        self._server.realtime_url = self.realtime.websocket_base_url
        await self._server.start(timeout_s)

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()
        await self.realtime.stop()

    async def __aenter__(self) -> LocalStack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
