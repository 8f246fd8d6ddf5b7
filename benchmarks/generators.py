"""The load-generator processes of one benchmark run: start them, watch their CPU, collect."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.procstat import tree_cpu_s
from simulators.stack import PROJECT_ROOT, free_port


@dataclass
class GeneratorLoad:
    """One generator process over the measured window."""

    role: str
    cpu_s: float
    wall_s: float
    loop_lag_p99_ms: float

    @property
    def cpu_pct(self) -> float:
        return 100 * self.cpu_s / self.wall_s if self.wall_s else 0.0


@dataclass
class Usage:
    server_cpu_s: float
    wall_s: float
    rss_before_mb: float
    rss_peak_mb: float
    generators: list[GeneratorLoad]
    server_cpu_samples: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class CallWindow:
    """The callers' evidence and the generators' load while the calls ran."""

    calls: list[dict[str, Any]]
    started_at: float
    ended_at: float
    generators: list[GeneratorLoad]
    server_cpu_samples: list[tuple[float, float]]

    @property
    def call_sids(self) -> list[str]:
        return [call["call_sid"] for call in self.calls]

    def usage(self, server_cpu_s: float, rss_before_mb: float, rss_peak_mb: float) -> Usage:
        return Usage(
            server_cpu_s,
            self.ended_at - self.started_at,
            rss_before_mb,
            rss_peak_mb,
            self.generators,
            self.server_cpu_samples,
        )


class Generators:
    """Realtime stand-in processes (one port, SO_REUSEPORT) and caller processes."""

    def __init__(
        self,
        workdir: Path,
        *,
        cpus: str | None,
        seconds: float,
        ramp_s: float = 0.0,
        model_connect_ms: float = 0.0,
        stream_connect_ms: float = 0.0,
        tools: bool = False,
    ) -> None:
        self.workdir = workdir
        # The Realtime stand-in's answers call a tool (`loadgen realtime --tools`).
        self.tools = tools
        self.cpus = cpus
        self.seconds = seconds
        self.ramp_s = ramp_s
        # Handshakes over the internet, modelled as waits (see the simulators).
        self.model_connect_ms = model_connect_ms
        self.stream_connect_ms = stream_connect_ms
        self.port = 0
        self._realtime: list[tuple[asyncio.subprocess.Process, Path]] = []
        self._others: list[asyncio.subprocess.Process] = []

    @property
    def realtime_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    def _command(self, *args: str) -> list[str]:
        command = [sys.executable, "-m", "benchmarks.loadgen", *args]
        return ["taskset", "-c", self.cpus, *command] if self.cpus else command

    async def __aenter__(self) -> Generators:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for process in [p for p, _ in self._realtime] + self._others:
            if process.returncode is None:
                process.kill()
                await process.wait()

    async def start_realtime(self, count: int) -> None:
        self.port = free_port()
        for index in range(count):
            results = self.workdir / f"realtime-{index}.json"
            options = ["--port", str(self.port), "--first-index", str(index * 100_000)]
            options += ["--handshake-delay-ms", str(self.model_connect_ms)]
            options += ["--tools"] if self.tools else []
            process = await asyncio.create_subprocess_exec(
                *self._command("realtime", "--results", str(results), *options),
                cwd=PROJECT_ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            self._realtime.append((process, results))
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            if line.strip() != b"ready":
                raise RuntimeError(f"realtime generator {index} did not start: {line!r}")

    async def run_callers(
        self, base_url: str, calls: int, per_process: int, server_pid: int
    ) -> CallWindow:
        """Run `calls` callers split over processes; returns once every caller process exited."""
        counts = [per_process] * (calls // per_process)
        if calls % per_process:
            counts.append(calls % per_process)
        realtime_before = [tree_cpu_s(p.pid) for p, _ in self._realtime]
        samples: list[tuple[float, float]] = []
        sampler = asyncio.create_task(_sample(server_pid, samples))
        started = time.monotonic()
        processes = []
        for index, count in enumerate(counts):
            results = self.workdir / f"callers-{index}.json"
            options = ["--base-url", base_url, "--calls", str(count)]
            options += ["--seconds", str(self.seconds), "--ramp-s", str(self.ramp_s)]
            options += ["--total-calls", str(calls), "--first-call", str(index)]
            options += ["--processes", str(len(counts))]
            options += ["--stream-connect-ms", str(self.stream_connect_ms)]
            process = await asyncio.create_subprocess_exec(
                *self._command("callers", "--results", str(results), *options),
                cwd=PROJECT_ROOT,
            )
            self._others.append(process)
            processes.append((process, results))
        for process, _ in processes:
            await asyncio.wait_for(process.wait(), self.seconds + self.ramp_s + 90)
        ended = time.monotonic()
        sampler.cancel()
        loads = [
            GeneratorLoad(f"realtime-{i}", tree_cpu_s(p.pid) - before, ended - started, 0.0)
            for i, ((p, _), before) in enumerate(zip(self._realtime, realtime_before, strict=True))
        ]
        evidence: list[dict[str, Any]] = []
        for index, (_, results) in enumerate(processes):
            data = json.loads(results.read_text())
            evidence += data["calls"]
            wall = data["ended_at"] - data["started_at"]
            loads.append(
                GeneratorLoad(f"callers-{index}", data["cpu_s"], wall, data["loop_lag_p99_ms"])
            )
        return CallWindow(evidence, started, ended, loads, samples)

    async def wait_recorded(self, call_sids: list[str], timeout_s: float) -> None:
        """Until every call's row has its end time (the server's last write), bounded."""
        from asgiref.sync import sync_to_async

        from calls.models import CallSession

        def open_calls() -> int:
            return CallSession.objects.filter(call_sid__in=call_sids, ended_at__isnull=True).count()

        deadline = time.monotonic() + timeout_s
        # Another process writes these rows; there is no event to await, so poll, bounded.
        while await sync_to_async(open_calls)() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    async def stop_realtime(self, usage: Usage) -> list[dict[str, Any]]:
        """Stop the stand-ins; their sessions' evidence, and their loop lag put in `usage`."""
        sessions: list[dict[str, Any]] = []
        for index, (process, results) in enumerate(self._realtime):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
            data = json.loads(results.read_text())
            for load in usage.generators:
                if load.role == f"realtime-{index}":
                    load.loop_lag_p99_ms = data["loop_lag_p99_ms"]
            sessions += data["sessions"]
        return sessions


async def _sample(pid: int, samples: list[tuple[float, float]], every_s: float = 0.1) -> None:
    """(monotonic time, server tree CPU s) every `every_s`: shows bursts an average hides."""
    while True:
        samples.append((time.monotonic(), tree_cpu_s(pid)))
        await asyncio.sleep(every_s)
