"""Which committed rows a host hears of: the signals (`calls.signals`) of a commit's rows.

Pure: rows in, signals with their arguments out, in the order a host hears
them. The call's own facts (its SID, numbers, agent) are added by the host's
thread (`calls.live.host`), which reads them from the call's row.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from callcore.records import EndReason, RecordKind
from calls import signals
from calls.live.writer import BargeInRow, LogRow

# Each signal's name, as `calls.signals` spells it.
SIGNAL_NAMES: dict[Any, str] = {getattr(signals, name): name for name in signals.__all__}

# A barge-in's figures a host receives (`BargeInEvent` columns), besides its `offset_ms`.
BARGE_IN_FIGURES = (
    "playout_remaining_ms",
    "audio_end_ms",
    "reaction_ms",
    "heard_text",
    "cut_text",
    "response_cancelled",
)

# A call's signals sent after all its others in a commit.
_LAST = (signals.call_transferred, signals.call_ended)


@dataclass(frozen=True, slots=True)
class Announcement:
    """`signal` for a committed row of call `call_pk`; `named`, its arguments but the
    call's own (`call_sid`, and `call_started`'s numbers and agent)."""

    signal: Any
    call_pk: int
    named: dict[str, Any]

    @property
    def name(self) -> str:
        return SIGNAL_NAMES[self.signal]


def announcements(
    logs: Sequence[LogRow], barge_ins: Sequence[BargeInRow], listened: Collection[Any]
) -> list[Announcement]:
    """The signals among `listened` of rows committed together: each call's in the order
    of its rows' offsets, its end last; the calls in the order of their first such row."""
    # (the call's first row, its end?, offset_ms, the announcement)
    found: list[tuple[int, bool, int, Announcement]] = []
    order: dict[int, int] = {}

    def add(signal: Any, call_pk: int, offset_ms: int, **named: Any) -> None:
        first_row = order.setdefault(call_pk, len(order))
        if signal in listened:
            found.append(
                (first_row, signal in _LAST, offset_ms, Announcement(signal, call_pk, named))
            )

    for pk, kind, _, offset_ms, _, details in logs:
        if kind == RecordKind.STREAM_STARTED:
            add(signals.call_started, pk, offset_ms)
        elif kind == RecordKind.TOOL_CALL:
            add(
                signals.tool_called,
                pk,
                offset_ms,
                name=str(details.get("name", "")),
                outcome=str(details.get("outcome", "")),
                duration_ms=int(details.get("duration_ms") or 0),
                arguments=dict(details.get("arguments") or {}),
            )
        elif kind == RecordKind.STREAM_ENDED:
            reason = str(details.get("end_reason", ""))
            if reason == EndReason.TRANSFERRED:
                target = str(details.get("transfer_target", ""))
                add(signals.call_transferred, pk, offset_ms, target=target)
            add(signals.call_ended, pk, offset_ms, end_reason=reason)
    for pk, _, offset_ms, fields in barge_ins:
        figures = {"offset_ms": offset_ms, **{key: fields.get(key) for key in BARGE_IN_FIGURES}}
        add(signals.barge_in, pk, offset_ms, figures=figures)
    # Stable: at one offset, a call's start before its barge-in, its transfer before its end.
    found.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in found]
