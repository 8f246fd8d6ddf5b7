"""An `Event`: one thing that happened on a call, in ms and words, and how a row's details are read.

Pure. `calls.review.story` (the conversation and the hangups) and
`calls.review.actions` (what the agent did besides speaking) tell a call's rows
as events; `calls.review.timeline` places them. Both read a row's details and
write its times with the helpers here, so a time reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TimelineRow = tuple[str, int, str, Mapping[str, object]]
"""(kind, offset_ms, playout_status, details): a playout-log row as `values_list` yields it."""


@dataclass(frozen=True)
class Event:
    """One thing that happened, with its times and words; `lane` says whose it is.

    Lanes: "findings", "ai", "caller", "tools", "hangup", "errors". Bars have an
    `end_ms`; marks have none.
    """

    lane: str
    kind: str
    variant: str
    offset_ms: int
    end_ms: int | None = None  # bars only
    title: str = ""
    data: tuple[tuple[str, str], ...] = ()
    label: str = ""  # a short name for the thing
    inside: str = ""  # a longer one, for inside its bar when there is room (`label` at the least)
    overlap_until_ms: int | None = None  # speech judged AI silent: the AI was heard until here


def detail_int(details: Mapping[str, object], key: str) -> int | None:
    """A whole number of the details (a float is cut); None when absent or not a number."""
    value = details.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def detail_str(details: Mapping[str, object], key: str) -> str:
    """A value of the details as text; "" when absent."""
    value = details.get(key)
    return "" if value is None else str(value)


def join_lines(*parts: str) -> str:
    """The parts that are not empty, a line each (a tooltip)."""
    return "\n".join(part for part in parts if part)


def at_s(offset_ms: int) -> str:
    """A time or a duration, to the millisecond."""
    return f"{offset_ms / 1000:.3f} s"
