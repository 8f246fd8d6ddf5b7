"""Call context (call_sid, stream_sid) on every log record, and JSON log lines."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_call_sid: contextvars.ContextVar[str] = contextvars.ContextVar("call_sid", default="-")
_stream_sid: contextvars.ContextVar[str] = contextvars.ContextVar("stream_sid", default="-")


def bind_call(call_sid: str | None = None, stream_sid: str | None = None) -> None:
    """Set the call context for the current task and the tasks it starts later."""
    if call_sid is not None:
        _call_sid.set(call_sid)
    if stream_sid is not None:
        _stream_sid.set(stream_sid)


@contextmanager
def call_context(call_sid: str, stream_sid: str = "-") -> Iterator[None]:
    """Bind the call context for a block of synchronous code."""
    sid_token = _call_sid.set(call_sid)
    stream_token = _stream_sid.set(stream_sid)
    try:
        yield
    finally:
        _call_sid.reset(sid_token)
        _stream_sid.reset(stream_token)


class CallContextFilter(logging.Filter):
    """Adds `call_sid` and `stream_sid` to records that do not carry them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_sid"):
            record.call_sid = _call_sid.get()
        if not hasattr(record, "stream_sid"):
            record.stream_sid = _stream_sid.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers in production."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "call_sid": getattr(record, "call_sid", "-"),
            "stream_sid": getattr(record, "stream_sid", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)
