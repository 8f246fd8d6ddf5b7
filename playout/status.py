"""The playout status strings of logs and records, formatted and parsed in one place.

Semantics (N is measured from the deadline itself, in whole ms):

- `playout_active_<N>ms`: the deadline is N >= 1 ms in the future;
- `playout_ended_<N>ms_ago`: the deadline passed N >= 0 ms ago. This
  includes the grace window, during which `is_speaking` may still be true:
  the status describes the estimate, `speaking_reason` the decision;
- `no_playout_ts`: nothing was sent since start or the last cancel.

`playout_active_0ms` is never produced: under 0.5 ms left reads as ended 0 ms ago.
"""

from __future__ import annotations

import re

NO_PLAYOUT_TS = "no_playout_ts"

_ACTIVE = re.compile(r"playout_active_(\d+)ms")
_ENDED = re.compile(r"playout_ended_(\d+)ms_ago")


def seconds_to_ms(seconds: float) -> int:
    """A duration in seconds as the nearest whole millisecond."""
    # Rounding, not flooring: 4.3 - 0.0 in floats can be 4.2999999, which must read 4300.
    return round(seconds * 1000)


def format_playout_status(deadline_offset_ms: int | None) -> str:
    """The status string for `deadline - now` in ms (None: no deadline)."""
    if deadline_offset_ms is None:
        return NO_PLAYOUT_TS
    if deadline_offset_ms > 0:
        return f"playout_active_{deadline_offset_ms}ms"
    return f"playout_ended_{-deadline_offset_ms}ms_ago"


def parse_playout_status(status: str) -> int | None:
    """The inverse of `format_playout_status`: deadline - now in ms, None for no deadline.

    Raises `ValueError` for a string that is not a playout status.
    """
    if status == NO_PLAYOUT_TS:
        return None
    active = _ACTIVE.fullmatch(status)
    if active is not None:
        return int(active.group(1))
    ended = _ENDED.fullmatch(status)
    if ended is not None:
        return -int(ended.group(1))
    raise ValueError(f"not a playout status: {status!r}")
