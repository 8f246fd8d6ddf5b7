"""What happened on a call, read from its playout-log rows: in milliseconds and words, no pixels.

Pure: no queries, no templates, no clock. Rows are `(kind, offset_ms, playout_status,
details)` in offset order, as `PlayoutLog.objects.values_list(...)` yields them. Reading
numbers the responses (R1, R2...), lays the audio the caller heard end to end, and
turns each thing that happened into an `Event`: its times in ms since the stream
started, its tooltip and its label. Where each event goes on the picture is
`calls.review.timeline`'s to decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from callcore.records import EndReason, RecordKind, rule_label
from calls.review.actions import keypad_events, tool_events, transfer_events
from calls.review.event import Event, TimelineRow, at_s, detail_int, detail_str, join_lines
from calls.review.sounds import pause_events, sound_events
from playout import parse_playout_status

__all__ = ["Event", "Finding", "Story", "SuspectRow", "TimelineRow", "read_story"]

SuspectRow = tuple[int | None, str, str]
"""(offset_ms or None for the whole call, rule, message in plain words)."""

_ERRORS: dict[str, str] = {
    RecordKind.MODEL_ERROR: "error",
    RecordKind.MODEL_FAULT: "fault",
    RecordKind.MODEL_RECOVERED: "recovered",
    RecordKind.PROTOCOL_ERROR: "protocol",
    RecordKind.TRUNCATE_REJECTED: "truncate",
}
_BARGE_IN_FIGURES = (
    "playout_remaining_ms",
    "audio_end_ms",
    "reaction_ms",
    "pending_ms",
    "unplayed_ms",
    "response_cancelled",
)
# A truncation this far from its clear is worth a label: the model remembers
# more, or less, than the caller heard.
TRUNCATION_NOTE_MS = 100


@dataclass(frozen=True)
class Finding:
    """A suspect, in words: `at` is its time, or "whole call"."""

    rule: str
    name: str
    message: str
    offset_ms: int | None
    at: str


@dataclass(frozen=True)
class Story:
    """A call's playout log read once, kind by kind, each kind in the order it happened."""

    extent_ms: int  # from the stream's start to the last thing that happened, at least 1 s
    header: str  # the call in one line
    findings: tuple[Finding, ...]  # every suspect, placed or not
    flags: tuple[Event, ...]  # the suspects placed at an offset
    stream_ends: tuple[Event, ...]
    dropped: tuple[Event, ...]  # what a barge-in's clear dropped, never heard
    heard: tuple[Event, ...]  # the AI audio the caller heard, response by response
    items: tuple[Event, ...]  # where the next audio item of an answer began (newer models)
    pauses: tuple[Event, ...]  # the answer paused while a caller's sound was judged
    speech: tuple[Event, ...]  # the caller's speech, each followed by the decision on it
    sounds: tuple[Event, ...]  # what each caller sound during the AI's turn was judged to be
    keypad: tuple[Event, ...]  # keypad digits given to the model
    tools: tuple[Event, ...]  # tool calls while they ran, and the holding lines meanwhile
    drains: tuple[Event, ...]  # hangup and transfer drains
    transfers: tuple[Event, ...]  # where the AI asked to hand the caller to a person
    generation_ends: tuple[Event, ...]
    truncations: tuple[Event, ...]
    clears: tuple[Event, ...]
    errors: tuple[Event, ...]


def read_story(
    rows: Sequence[TimelineRow],
    *,
    suspects: Sequence[SuspectRow] = (),
    link_rtt_ms: int | None = None,
) -> Story:
    """What the rows say happened, with the findings; `link_rtt_ms` goes in the header.

    Things whose end was never logged run to `extent_ms`.
    """
    call = _read(rows, suspects)
    return Story(
        extent_ms=call.extent_ms,
        header=_header(rows, call, link_rtt_ms),
        findings=tuple(_findings(suspects)),
        flags=tuple(_flag_events(suspects)),
        stream_ends=tuple(_stream_end_events(rows)),
        dropped=tuple(_dropped_events(rows, call)),
        heard=tuple(_heard_events(call)),
        items=tuple(_item_events(call)),
        pauses=tuple(pause_events(rows, call.extent_ms)),
        speech=tuple(_speech_events(rows, call)),
        sounds=tuple(sound_events(rows)),
        keypad=tuple(keypad_events(rows)),
        tools=tuple(tool_events(rows)),
        drains=tuple(_drain_events(rows, call)),
        transfers=tuple(transfer_events(rows)),
        generation_ends=tuple(_generation_end_events(rows, call)),
        truncations=tuple(_truncation_events(rows, call)),
        clears=tuple(_clear_events(rows, call)),
        errors=tuple(_error_events(rows)),
    )


# --- the rows, read once ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Heard:
    """A stretch of one response's audio the caller heard."""

    response_id: str
    start_ms: int
    end_ms: int
    logged: bool  # its end was logged (else it runs to the end)
    # Its audio items as they played: (item id, ms into the stretch, ms of it sent).
    items: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class _Call:
    """What the rows say, read once: which response is which, and when each was heard."""

    extent_ms: int
    ended_ms: int | None  # when the stream ended, if it did
    names: Mapping[str, str]  # response id -> "R1", in order of first appearance
    items: Mapping[str, str]  # item id -> response id
    words: Mapping[str, str]  # response id -> the words the caller heard
    heard: Sequence[_Heard]

    def item_point_ms(self, item_id: str, audio_end_ms: int, heard: _Heard) -> int:
        """Where the caller heard the item's `audio_end_ms`: within the stretch of its
        answer that played that part of it (an answer can play in several stretches,
        an item across two); `heard`'s start plus `audio_end_ms` when none lists it."""
        played = 0
        point = None
        for stretch in self.heard:
            if stretch.response_id != heard.response_id:
                continue
            for listed, into_ms, sent_ms in stretch.items:
                if listed != item_id:
                    continue
                point = stretch.start_ms + into_ms + audio_end_ms - played
                if audio_end_ms <= played + sent_ms:
                    return point
                played += sent_ms
        return heard.start_ms + audio_end_ms if point is None else point

    def name(self, response_id: str) -> str:
        return self.names.get(response_id, "R?")

    def heard_of(self, response_id: str, before_ms: int | None) -> _Heard | None:
        """The response's last stretch heard that began by `before_ms` (None: any)."""
        stretches = [
            h
            for h in self.heard
            if h.response_id == response_id and (before_ms is None or h.start_ms <= before_ms)
        ]
        return stretches[-1] if stretches else None


def _read(rows: Sequence[TimelineRow], suspects: Sequence[SuspectRow]) -> _Call:
    names: dict[str, str] = {}
    items: dict[str, str] = {}
    said: dict[str, str] = {}  # item id -> the last words recorded for it
    heard_text: dict[str, str] = {}  # response id -> a barge-in's heard words
    ends = [1000, *(offset for offset, _, _ in suspects if offset is not None)]
    ghost_ends: list[int] = []
    ended_ms = None
    for kind, offset, _, details in rows:
        ends.append(offset)
        response_id, item_id = detail_str(details, "response_id"), detail_str(details, "item_id")
        if response_id:
            names.setdefault(response_id, f"R{len(names) + 1}")
            if item_id and kind in (RecordKind.PLAYOUT_STARTED, RecordKind.BARGE_IN):
                items.setdefault(item_id, response_id)
        if kind == RecordKind.CONVERSATION_TURN and details.get("role") == "assistant" and item_id:
            said[item_id] = detail_str(details, "text")
        elif kind == RecordKind.BARGE_IN:
            heard_text[response_id] = detail_str(details, "heard_text")
            ghost_ends.append(offset + _dropped_ms(details))
        elif kind == RecordKind.PLAYOUT_ENDED:
            ends.append(detail_int(details, "audio_end_offset_ms") or 0)
            for item, _ in _item_list(details):
                items.setdefault(item, response_id)
        elif kind == RecordKind.STREAM_ENDED:
            ended_ms = offset
    # A tail dropped just before the end is drawn up to the end, not past it.
    extent_ms = max(ends if ended_ms is not None else [*ends, *ghost_ends])
    words = {rid: said[item] for item, rid in items.items() if said.get(item)}
    words.update({rid: text for rid, text in heard_text.items() if text and rid not in words})
    return _Call(extent_ms, ended_ms, names, items, words, _heard(rows, extent_ms))


def _item_runs(details: Mapping[str, object]) -> tuple[tuple[str, int, int], ...]:
    """A playout interval's items laid end to end: (item id, ms into it, ms sent)."""
    runs = []
    into = 0
    for item_id, sent in _item_list(details):
        runs.append((item_id, into, sent))
        into += sent
    return tuple(runs)


def _item_list(details: Mapping[str, object]) -> list[tuple[str, int]]:
    """A playout interval's items and the ms of each sent (`[[item_id, ms], ...]`)."""
    listed = details.get("items")
    out: list[tuple[str, int]] = []
    for entry in listed if isinstance(listed, list) else []:
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str):
            sent = entry[1]
            out.append((entry[0], sent if isinstance(sent, int) else 0))
    return out


def _heard(rows: Sequence[TimelineRow], extent_ms: int) -> list[_Heard]:
    """Playout intervals as the caller heard them: one after the other.

    An interval starts with its first frame sent and ends when the caller stops
    hearing it; a response queued behind another is only heard once that one has
    played its `audio_ms`, so overlapping intervals are laid end to end.
    """
    opened: dict[str, int] = {}
    logged: list[tuple[int, int, str, int | None, bool, tuple[tuple[str, int, int], ...]]] = []
    for kind, offset, _, details in rows:
        response_id = detail_str(details, "response_id")
        if kind == RecordKind.PLAYOUT_STARTED:
            opened.setdefault(response_id, offset)
        elif kind == RecordKind.PLAYOUT_ENDED and response_id in opened:
            end = detail_int(details, "audio_end_offset_ms")
            audio_ms = detail_int(details, "audio_ms")
            logged.append(
                (
                    opened.pop(response_id),
                    offset if end is None else end,
                    response_id,
                    audio_ms,
                    True,
                    _item_runs(details),
                )
            )
    logged += [(start, extent_ms, rid, None, False, ()) for rid, start in opened.items()]
    logged.sort(key=lambda interval: interval[0])
    heard: list[_Heard] = []
    for i, (start, end, response_id, audio_ms, was_logged, runs) in enumerate(logged):
        start = max(start, heard[-1].end_ms) if heard else start
        overlapped = i + 1 < len(logged) and logged[i + 1][0] < end
        if overlapped and audio_ms is not None:
            end = min(end, start + audio_ms)
        heard.append(_Heard(response_id, start, max(start, end), was_logged, runs))
    return heard


# --- events: each thing that happened, with its times and words ------------------------------


def _heard_events(call: _Call) -> list[Event]:
    events = []
    for heard in call.heard:
        name = call.name(heard.response_id)
        words = call.words.get(heard.response_id, "")
        title = join_lines(
            f"{name}: response {heard.response_id or '?'}",
            f"heard {at_s(heard.start_ms)} to {at_s(heard.end_ms)} "
            f"({at_s(heard.end_ms - heard.start_ms)})",
            f"heard: “{words}”" if words else "",
            "" if heard.logged else "its end was never logged: drawn to the end",
        )
        number = name[1:]
        variant = "even" if number.isdigit() and int(number) % 2 == 0 else "odd"
        events.append(
            Event(
                "ai",
                "playout",
                variant,
                heard.start_ms,
                heard.end_ms,
                title,
                (("response", name),),
                label=name,
                inside=f"{name} “{words}”" if words else name,
            )
        )
    return events


def _item_events(call: _Call) -> list[Event]:
    """Where each audio item after an answer's first began, within the stretch heard.

    Items are numbered within their answer by first appearance; an item that
    goes on in the answer's next stretch does not begin again there.
    """
    events = []
    seen: dict[str, list[str]] = {}  # response id -> its item ids, in order of first audio
    into_answer: dict[str, int] = {}  # response id -> ms of it sent in earlier stretches
    for heard in call.heard:
        response_id = heard.response_id
        numbered = seen.setdefault(response_id, [])
        before_ms = into_answer.get(response_id, 0)
        into_answer[response_id] = before_ms + sum(sent for _, _, sent in heard.items)
        name = call.name(response_id)
        for item_id, into_ms, sent_ms in heard.items:
            if item_id in numbered:
                continue
            numbered.append(item_id)
            at = heard.start_ms + into_ms
            if len(numbered) == 1:
                continue  # the answer's first: its start is the answer's
            if at >= heard.end_ms:
                break  # cut before the caller heard any of it
            title = join_lines(
                f"{name}: its audio item {len(numbered)} begins, "
                f"{at_s(before_ms + into_ms)} into the answer",
                f"item {item_id}: {at_s(sent_ms)} of its audio sent",
            )
            number = len(numbered)
            data = (("response", name), ("item", str(number)))
            events.append(Event("ai", "item_start", "heard", at, title=title, data=data))
    return events


def _dropped_events(rows: Sequence[TimelineRow], call: _Call) -> list[Event]:
    """What a barge-in's clear dropped: what Twilio held plus what we held, never heard."""
    events = []
    for kind, offset, _, details in rows:
        dropped = _dropped_ms(details) if kind == RecordKind.BARGE_IN else 0
        if dropped <= 0:
            continue
        name = call.name(detail_str(details, "response_id"))
        end = offset + dropped
        if call.ended_ms is not None:
            end = min(end, max(offset, call.ended_ms))
        cut = detail_str(details, "cut_text")
        title = join_lines(
            f"{name}: {at_s(dropped)} dropped at the clear ({at_s(offset)}), never heard",
            f"Twilio held {detail_int(details, 'unplayed_ms') or 0} ms, "
            f"the bridge held {detail_int(details, 'pending_ms') or 0} ms",
            f"cut: “{cut}”" if cut else "",
            "the call ended first: drawn to its end" if end < offset + dropped else "",
        )
        data = (("dropped-ms", str(dropped)), ("response", name))
        label = f"{dropped / 1000:.1f} s dropped" if dropped >= 1000 else f"{dropped} ms dropped"
        events.append(Event("ai", "ghost", "dropped", offset, end, title, data, label=label))
    return events


def _clear_events(rows: Sequence[TimelineRow], call: _Call) -> list[Event]:
    events = []
    for kind, offset, status, details in rows:
        if kind != RecordKind.BARGE_IN:
            continue
        name = call.name(detail_str(details, "response_id"))
        title = join_lines(
            f"clear at {at_s(offset)}: Twilio drops {name}'s queued audio",
            f"reaction {details.get('reaction_ms')} ms after the speech event; {status or '-'}",
        )
        events.append(Event("ai", "clear", "sent", offset, title=title, data=(("response", name),)))
    return events


def _generation_end_events(rows: Sequence[TimelineRow], call: _Call) -> list[Event]:
    events = []
    for kind, offset, _, details in rows:
        if kind != RecordKind.RESPONSE_DONE:
            continue
        name = call.name(detail_str(details, "response_id"))
        status = detail_str(details, "status") or "?"
        title = (
            f"{name}: the model finished sending at {at_s(offset)} "
            f"({status}, {details.get('audio_ms')} ms of audio)"
        )
        variant = "completed" if status == "completed" else "stopped"
        data = (("response", name),)
        events.append(Event("ai", "generation_end", variant, offset, title=title, data=data))
    return events


def _truncation_events(rows: Sequence[TimelineRow], call: _Call) -> list[Event]:
    """Where the model's memory of an interrupted answer was cut, apart from the clear.

    The position is the answer's heard start plus the `audio_end_ms` the model
    confirmed (`truncated`); a truncate never confirmed shows what was asked, and
    an answer deleted instead (`truncate_rejected`, "deleted") is cut at its start.
    """
    asked: dict[str, tuple[int, int]] = {}  # item id -> (clear offset, audio_end_ms asked)
    cuts: list[tuple[str, int, str, int | None]] = []  # (item, audio_end_ms, variant, clear)
    for kind, offset, _, details in rows:
        item_id, audio_end = detail_str(details, "item_id"), detail_int(details, "audio_end_ms")
        if kind == RecordKind.BARGE_IN and item_id and audio_end is not None:
            asked[item_id] = (offset, audio_end)
        elif kind == RecordKind.TRUNCATED and item_id:
            ask = asked.pop(item_id, None)
            cuts.append((item_id, audio_end or 0, "confirmed", None if ask is None else ask[0]))
        elif (
            kind == RecordKind.TRUNCATE_REJECTED
            and details.get("action") == "deleted"
            and item_id in asked
        ):
            cuts.append((item_id, 0, "deleted", asked.pop(item_id)[0]))
    cuts += [(item, audio_end, "requested", clear) for item, (clear, audio_end) in asked.items()]
    events = []
    for item_id, audio_end, variant, clear in cuts:
        response_id = call.items.get(item_id, "")
        heard = call.heard_of(response_id, clear)
        if heard is None and clear is None:
            continue
        # An answer of several audio items: the item began partway into it.
        at = clear or 0 if heard is None else call.item_point_ms(item_id, audio_end, heard)
        name = call.name(response_id)
        events.append(
            Event(
                "ai",
                "truncation",
                variant,
                at,
                title=_truncation_title(name, item_id, audio_end, variant, at, clear, heard),
                data=(("response", name),),
                label=_truncation_label(variant, at, clear),
            )
        )
    return events


def _truncation_title(
    name: str,
    item_id: str,
    audio_end_ms: int,
    variant: str,
    at: int,
    clear: int | None,
    heard: _Heard | None,
) -> str:
    what = {
        "confirmed": f"the model's memory of {name} cut at {audio_end_ms} ms of its audio",
        "requested": f"truncate of {name} at {audio_end_ms} ms asked, never confirmed",
        "deleted": f"{name} deleted from the model's memory (its truncate was refused)",
    }[variant]
    return join_lines(
        f"{what}: {at_s(at)} on the call",
        f"item {item_id}" + ("" if clear is None else f"; the clear was at {at_s(clear)}"),
        "" if heard is not None else "its playout was not logged: drawn at the clear",
    )


def _truncation_label(variant: str, at: int, clear: int | None) -> str:
    if variant == "deleted":
        return "answer deleted from memory"
    if clear is None or abs(at - clear) < TRUNCATION_NOTE_MS:
        return ""
    what = "memory cut" if variant == "confirmed" else "cut asked, unconfirmed,"
    if at < clear:
        return f"{what} {clear - at} ms before the clear"
    return f"{what} {at - clear} ms past the clear"


def _speech_events(rows: Sequence[TimelineRow], call: _Call) -> list[Event]:
    """The caller's speech from its real onset to its stop, and the bridge's decision on it."""
    events: list[Event] = []
    speaking: tuple[str, int, str, Mapping[str, object], int] | None = None
    for kind, offset, status, details in [*rows, ("", call.extent_ms, "", {})]:
        if kind in (RecordKind.BARGE_IN, RecordKind.USER_SPEECH_AI_SILENT):
            onset = detail_int(details, "speech_onset_offset_ms")
            onset = offset if onset is None else max(0, min(onset, offset))
            if speaking is not None:
                events += _speech(call, *speaking, max(speaking[1], onset))
            speaking = (kind, offset, status, details, onset)
        elif kind in (RecordKind.SPEECH_STOPPED, "") and speaking is not None:
            events += _speech(call, *speaking, offset)
            speaking = None
    return events


def _speech(
    call: _Call,
    kind: str,
    decided: int,
    status: str,
    details: Mapping[str, object],
    onset: int,
    end: int,
) -> list[Event]:
    barge_in = kind == RecordKind.BARGE_IN
    until = None if barge_in else _overlap_until(call, onset, decided, status, details)
    variant = "barge" if barge_in else "missed" if until is not None else "silent"
    what = {
        "barge": "barge-in",
        "silent": "judged AI silent",
        "missed": "judged AI silent, though it began while the AI was heard",
    }[variant]
    has_onset = detail_int(details, "speech_onset_offset_ms") is not None
    speech_title = join_lines(
        f"caller speech {at_s(onset)} to {at_s(end)}",
        f"onset {at_s(onset)}" if has_onset else "onset unknown: drawn from the decision",
        f"the bridge decided at {at_s(decided)}"
        + (f", {decided - onset} ms after the onset" if has_onset else "")
        + f": {what}",
        ""
        if until is None
        else f"the AI was heard until {at_s(until)}: {until - onset} ms spoken over it",
    )
    data = (("onset-ms", str(onset)), ("decided-ms", str(decided)), ("decision", kind))
    if barge_in:
        remaining = detail_int(details, "playout_remaining_ms")
        label = "barge-in" if remaining is None else f"barge-in {remaining} ms left"
        figures = ", ".join(f"{name}={details.get(name)}" for name in _BARGE_IN_FIGURES)
        heard, cut = detail_str(details, "heard_text"), detail_str(details, "cut_text")
        decision_title = join_lines(
            f"barge-in decided at {at_s(decided)}: {label}",
            f"{figures}, {status or '-'}",
            f"heard: “{heard}”" if heard else "",
            f"cut: “{cut}”" if cut else "",
        )
    else:
        label = "AI silent" if until is None else "AI silent, but spoke over the AI"
        decision_title = join_lines(
            f"judged AI silent at {at_s(decided)}: AI silent: {status or '-'}",
            f"ms_since_playout_end={details.get('ms_since_playout_end')}, "
            f"onset_ms_after_playout_end={details.get('onset_ms_after_playout_end')}",
        )
    return [
        Event("caller", "speech", variant, onset, end, speech_title, data, overlap_until_ms=until),
        Event("caller", "decision", variant, decided, None, decision_title, data[2:], label=label),
    ]


def _overlap_until(
    call: _Call, onset: int, decided: int, status: str, details: Mapping[str, object]
) -> int | None:
    """Speech judged AI silent: until when the AI was still heard after its onset (None: not)."""
    after_end = detail_int(details, "onset_ms_after_playout_end")
    if after_end is not None:
        return onset - after_end if after_end < 0 else None
    remaining = _remaining_ms(status)
    if remaining is not None and remaining > 0:  # the estimate itself said the AI was heard
        return decided + remaining
    return next((h.end_ms for h in call.heard if h.start_ms <= onset < h.end_ms), None)


def _drain_events(rows: Sequence[TimelineRow], call: _Call) -> list[Event]:
    """Hangup and transfer drains: completed, cancelled by the caller speaking (the goodbye,
    or the transfer, interrupted), or cut (ended before the final mark echoed, or never ended)."""
    events = []
    # (offset, details, whether the drain began; else only the hangup or transfer was asked for)
    started: tuple[int, Mapping[str, object], bool] | None = None
    transfer = ""  # the target of the last transfer asked for, until its drain ends
    for kind, offset, _, details in [*rows, ("", call.extent_ms, "", {})]:
        if kind == RecordKind.TRANSFER_REQUESTED:
            transfer = detail_str(details, "target") or "?"
        if kind in (RecordKind.END_CALL_REQUESTED, RecordKind.TRANSFER_REQUESTED):
            if started is None:
                started = (offset, details, False)
        elif kind == RecordKind.DRAIN_STARTED:
            started = (offset, details, True)
        elif started is not None and kind in (
            RecordKind.DRAIN_COMPLETED,
            RecordKind.HANGUP_CANCELLED,
            "",
        ):
            start, start_details, draining = started
            started = None
            target = _transfer_target(start_details, details, transfer)
            transfer = ""
            if kind == "" and not draining:
                continue  # asked for, but the call ended another way
            outcome, label, note = _drain_outcome(kind, details, draining, target)
            expected = details.get("expected_wait_ms", start_details.get("expected_wait_ms"))
            title = join_lines(
                f"{'transfer' if target else 'hangup'} drain {at_s(start)} to {at_s(offset)}: "
                f"{note}",
                f"expected wait {expected} ms" if draining else "",
            )
            data = (("outcome", outcome), *((("transfer", target),) if target else ()))
            events.append(
                Event("hangup", "drain", outcome, start, offset, title, data, label=label)
            )
    return events


def _transfer_target(start: Mapping[str, object], end: Mapping[str, object], asked: str) -> str:
    """The target's name when a drain ended the call for a transfer; "" for a hangup's."""
    if cancelled := detail_str(end, "transfer_target"):
        return cancelled
    if start.get("end_reason") == EndReason.TRANSFERRED or "target" in start:
        return asked or "?"
    return ""


def _drain_outcome(
    kind: str, details: Mapping[str, object], draining: bool, target: str
) -> tuple[str, str, str]:
    """(outcome, label, what happened) of a drain's end row ("" for none); `target`, the
    transfer's ("" for a hangup)."""
    then = f"; then Twilio dials {target}" if target else ""
    if kind == RecordKind.HANGUP_CANCELLED:
        reason = detail_str(details, "reason") or "?"
        before = "" if draining else " before its drain began"
        what = f"the transfer to {target}" if target else "the goodbye"
        note = f"cancelled ({reason}){before}: {what} was interrupted, the call went on"
        return "cancelled", "transfer interrupted" if target else "goodbye interrupted", note
    if kind == "":
        return "cut", "drain never ended", "never completed"
    cut_off = detail_int(details, "cut_off_ms") or 0
    took = f"took {details.get('actual_wait_ms')} ms"
    if details.get("final_mark_echoed") and not cut_off:
        return "completed", "drained", f"completed, final mark echoed, {took}{then}"
    return (
        "cut",
        f"drain cut {cut_off} ms",
        f"ended before the final mark echoed, {took}, {cut_off} ms cut off{then}",
    )


def _error_events(rows: Sequence[TimelineRow]) -> list[Event]:
    events = []
    for kind, offset, _, details in rows:
        variant = _ERRORS.get(kind)
        if variant is None:
            continue
        code = detail_str(details, "code")
        if kind == RecordKind.MODEL_ERROR:
            label, what = code or "model error", f"model error {code}: {details.get('message')}"
            if code == "response_cancel_not_active":
                variant = "notice"  # the server's own interrupt won the race: harmless
        elif kind == RecordKind.MODEL_FAULT:
            label = f"fault: {details.get('what')}"
            what = f"model fault: {details.get('what')} (attempt {details.get('attempt')})"
        elif kind == RecordKind.MODEL_RECOVERED:
            label = "recovered"
            what = (
                f"model session replaced (attempt {details.get('attempt')}, "
                f"{details.get('turns')} turns carried over)"
            )
        elif kind == RecordKind.PROTOCOL_ERROR:
            label, what = "protocol error", f"malformed Twilio message: {details.get('reason')}"
        else:
            label = f"truncate {details.get('action')}"
            what = (
                f"truncate of {details.get('item_id')} at {details.get('audio_end_ms')} ms "
                f"rejected ({code}): {details.get('action')}"
            )
        title = f"{what}, at {at_s(offset)}"
        events.append(
            Event("errors", "error", variant, offset, None, title, (("record", kind),), label)
        )
    return events


def _stream_end_events(rows: Sequence[TimelineRow]) -> list[Event]:
    events = []
    for kind, offset, _, details in rows:
        if kind != RecordKind.STREAM_ENDED:
            continue
        reason = detail_str(details, "end_reason") or "-"
        target = detail_str(details, "transfer_target")
        title = f"stream ended at {at_s(offset)}: {reason}"
        if target:
            title += f"; then Twilio dials {target}"
        label = f"end: {reason}" + (f" → {target}" if target else "")
        data = (("transfer", target),) if target else ()
        events.append(Event("hangup", "stream_ended", "ended", offset, None, title, data, label))
    return events


def _flag_events(suspects: Sequence[SuspectRow]) -> list[Event]:
    return [
        Event(
            "findings",
            "suspect",
            "flag",
            offset,
            title=f"{rule} at {at_s(offset)}: {message}",
            data=(("rule", rule),),
            label=_rule_name(rule),
        )
        for offset, rule, message in suspects
        if offset is not None
    ]


def _findings(suspects: Sequence[SuspectRow]) -> list[Finding]:
    return [
        Finding(
            rule=rule,
            name=_rule_name(rule),
            message=message,
            offset_ms=offset,
            at="whole call" if offset is None else at_s(offset),
        )
        for offset, rule, message in suspects
    ]


def _header(rows: Sequence[TimelineRow], call: _Call, link_rtt_ms: int | None) -> str:
    barge_ins = sum(1 for kind, *_ in rows if kind == RecordKind.BARGE_IN)
    tools = sum(1 for kind, *_ in rows if kind == RecordKind.TOOL_CALL)
    tool_calls = f" · {tools} tool call{'s' * (tools != 1)}" if tools else ""
    judged = sum(1 for kind, *_ in rows if kind == RecordKind.TURN_VERDICT)
    sounds = f" · {judged} caller sound{'s' * (judged != 1)} judged" if judged else ""
    length = "still open" if call.ended_ms is None else f"{at_s(call.ended_ms)} long"
    link = "not measured" if link_rtt_ms is None else f"{link_rtt_ms} ms"
    return (
        f"Call {length} · {len(call.names)} response{'s' * (len(call.names) != 1)} · "
        f"{barge_ins} barge-in{'s' * (barge_ins != 1)}{tool_calls}{sounds} · "
        f"link round trip to Twilio: {link}"
    )


# --- small things ----------------------------------------------------------------------------


def _remaining_ms(playout_status: str) -> int | None:
    try:
        return parse_playout_status(playout_status)
    except ValueError:
        return None


def _dropped_ms(details: Mapping[str, object]) -> int:
    return (detail_int(details, "unplayed_ms") or 0) + (detail_int(details, "pending_ms") or 0)


def _rule_name(rule: str) -> str:
    return rule_label(rule)
