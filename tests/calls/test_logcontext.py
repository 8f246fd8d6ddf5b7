"""Call context on log records, and JSON log lines."""

from __future__ import annotations

import asyncio
import json
import logging

from calls.live.logcontext import CallContextFilter, JsonFormatter, bind_call, call_context


def record(message: str = "hello %s", *args: object) -> logging.LogRecord:
    rec = logging.LogRecord("calls.test", logging.INFO, __file__, 1, message, args or ("x",), None)
    CallContextFilter().filter(rec)
    return rec


def test_records_carry_the_bound_call() -> None:
    with call_context("CA1", "MZ1"):
        inside = record()
    outside = record()

    assert (inside.call_sid, inside.stream_sid) == ("CA1", "MZ1")
    assert (outside.call_sid, outside.stream_sid) == ("-", "-")


def test_tasks_started_after_binding_keep_their_call() -> None:
    """The call's own tasks (uplink, model reader) log with the call that started them."""

    async def child_record() -> tuple[str, str]:
        await asyncio.sleep(0)  # let the other call's task run and bind its own call
        rec = record()
        return rec.call_sid, rec.stream_sid

    async def call(sid: str) -> tuple[str, str]:
        bind_call(sid, "MZ" + sid)
        return await asyncio.create_task(child_record())

    async def two_calls() -> list[tuple[str, str]]:
        return list(await asyncio.gather(call("CA1"), call("CA2")))

    assert asyncio.run(two_calls()) == [("CA1", "MZCA1"), ("CA2", "MZCA2")]


def test_json_lines() -> None:
    with call_context("CA9", "MZ9"):
        line = JsonFormatter().format(record("barge-in remaining=%d", 4300))

    entry = json.loads(line)
    assert entry["message"] == "barge-in remaining=4300"
    assert (entry["call_sid"], entry["stream_sid"], entry["level"]) == ("CA9", "MZ9", "INFO")
