"""What the agent did besides speaking, read from the playout log: its tool calls, the holding
lines while they ran, the transfers it asked for, and the keypad digits given to it.

Pure, like `calls.review.story`, which tells the rest of the call: rows in, `Event`s out.
Tool calls (bars from when the tool started to when it returned) and holding lines have
a lane of their own, "tools"; a transfer request is the hangup lane's, where the drain
that ends the call for it is; keypad input is the caller's. A tool call's arguments
arrive already redacted by the host's hook.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from callcore.records import RecordKind
from calls.review.event import Event, TimelineRow, at_s, detail_int, detail_str, join_lines

# A tool call's outcome in words; the outcome itself names its bar's style.
OUTCOMES = {
    "ok": "ok",
    "error": "failed",
    "timeout": "timed out",
    "invalid_arguments": "invalid arguments",
    "unknown_tool": "unknown tool",
    "not_run": "not run",
}
ARGUMENTS_CHARS = 160  # of a tooltip; the whole row is one click away in the log list
INSIDE_ARGUMENTS_CHARS = 40  # of a bar's inside words
KEYPAD_LABEL_CHARS = 16


def tool_events(rows: Sequence[TimelineRow]) -> list[Event]:
    """Each tool call as a bar while it ran, then each holding line said meanwhile (drawn
    over the bars)."""
    calls = [_tool_call(o, d) for kind, o, _, d in rows if kind == RecordKind.TOOL_CALL]
    return calls + [_hold(o, d) for kind, o, _, d in rows if kind == RecordKind.TOOL_HOLD]


def transfer_events(rows: Sequence[TimelineRow]) -> list[Event]:
    """Where the AI asked to hand the caller to a person."""
    events = []
    for kind, offset, _, details in rows:
        if kind != RecordKind.TRANSFER_REQUESTED:
            continue
        target = detail_str(details, "target") or "?"
        number = detail_str(details, "number")
        to = f"{target} ({number})" if number else target
        call_id = detail_str(details, "call_id")
        title = join_lines(
            f"transfer to {to} requested at {at_s(offset)}"
            + (f" (tool call {call_id})" if call_id else ""),
            "the call ends once its goodbye is heard; then Twilio dials the number",
        )
        data = (("target", target), ("number", number))
        label = f"transfer → {target}"
        events.append(Event("hangup", "transfer", "requested", offset, None, title, data, label))
    return events


def keypad_events(rows: Sequence[TimelineRow]) -> list[Event]:
    """Keypad digits given to the model as the caller's input (the digits' own rows aside)."""
    events = []
    for kind, offset, _, details in rows:
        if kind != RecordKind.KEYPAD_INPUT:
            continue
        digits, ignored = detail_str(details, "digits"), detail_str(details, "ignored")
        shown = f"keypad {_cut(digits, KEYPAD_LABEL_CHARS)}"
        if ignored:  # typed before the conversation began, or after it ended
            title = f"keypad “{digits}” at {at_s(offset)}, not given to the model: {ignored}"
            label, variant = f"{shown} (ignored)", "ignored"
        else:
            title = f"keypad “{digits}” given to the model as the caller's input, at {at_s(offset)}"
            label, variant = shown, "digits"
        data = (("digits", digits),)
        events.append(Event("caller", "keypad", variant, offset, None, title, data, label))
    return events


def tool_span_ms(offset_ms: int, details: Mapping[str, object]) -> tuple[int, int]:
    """(start, end) of a tool call's run in ms since the stream started: from its start as
    logged (else its outcome's offset less its duration) for its `duration_ms`."""
    duration = max(detail_int(details, "duration_ms") or 0, 0)
    started = detail_int(details, "started_offset_ms")
    if started is None:
        started = max(offset_ms - duration, 0)
    return started, started + duration


def _arguments(arguments: object, chars: int = ARGUMENTS_CHARS) -> str:
    """A tool call's (redacted) arguments in one line: `express=true, order_id="A1"`.

    By name: PostgreSQL's jsonb keeps no order of its own, and the same call
    must read the same on every database.
    """
    if isinstance(arguments, Mapping):
        text = ", ".join(f"{key}={_json(value)}" for key, value in sorted(arguments.items()))
    elif arguments in (None, ""):
        text = ""
    else:
        text = _json(arguments)
    return _cut(text, chars)


def _ms(value: object) -> str:
    """A figure in ms, to a tenth: "0.8 ms"; "-" when not recorded."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{round(value, 1):g} ms"
    return "-"


def _tool_call(offset: int, details: Mapping[str, object]) -> Event:
    name = detail_str(details, "name") or "?"
    outcome = detail_str(details, "outcome") or "?"
    words = OUTCOMES.get(outcome, outcome)
    started, ended = tool_span_ms(offset, details)
    arguments = details.get("arguments")
    error, call_id = detail_str(details, "error"), detail_str(details, "call_id")
    dispatch, reply = details.get("dispatch_ms"), details.get("reply_ms")
    title = join_lines(
        f"tool {name}: {words} in {ended - started} ms, {at_s(started)} to {at_s(ended)}",
        f"arguments: {_arguments(arguments)}" if arguments else "no arguments",
        f"error: {error}" if error else "",
        f"dispatch {_ms(dispatch)} (arguments complete to function started), "
        f"reply {_ms(reply)} (function returned to its output sent)",
        "the caller spoke while it ran" if details.get("caller_spoke") else "",
        "the model was asked to answer with its result"
        if details.get("answer_asked")
        else "no answer asked for with its result",
        "its model session was replaced meanwhile: its output went to no conversation"
        if details.get("session_replaced")
        else "",
        f"call {call_id or '?'}; its outcome recorded at {at_s(offset)}",
    )
    data = (
        ("tool", name),
        ("outcome", outcome),
        ("duration-ms", str(ended - started)),
        ("dispatch-ms", _figure(dispatch)),
        ("reply-ms", _figure(reply)),
        ("call-id", call_id),
    )
    label = name if outcome == "ok" else f"{name}: {words}"
    # Inside its bar, when there is room: the figures first, so a cut loses the arguments.
    shown = _arguments(arguments, INSIDE_ARGUMENTS_CHARS)
    inside = f"{name} {words} {ended - started} ms" + (f" · {shown}" if shown else "")
    variant = outcome if outcome in OUTCOMES else "other"
    return Event("tools", "tool", variant, started, ended, title, data, label, inside)


def _hold(offset: int, details: Mapping[str, object]) -> Event:
    holds = detail_int(details, "holds")
    listed = details.get("call_ids")
    calls = ", ".join(str(c) for c in listed) if isinstance(listed, list) else ""
    title = join_lines(
        f"holding line {holds or '?'} asked for at {at_s(offset)}: the caller had heard "
        f"nothing for {_ms(details.get('silent_ms'))}",
        f"while tool call{'s' * (len(calls.split(', ')) > 1)} {calls} ran" if calls else "",
    )
    data = (("holds", str(holds or "")), ("silent-ms", _figure(details.get("silent_ms"))))
    return Event("tools", "hold", "said", offset, None, title, data, f"hold {holds or ''}".rstrip())


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _figure(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{round(value, 1):g}"
    return ""


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"
