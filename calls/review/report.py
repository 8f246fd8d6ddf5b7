"""The diagnostics report: reviewed calls as text lines of at most `WIDTH` or as JSON.

Pure: no queries, no settings, no clock. The caller passes each call's admin URL
and the time zone its start is shown in, and writes the text these return.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from callcore.records import FindingRule
from callcore.turns import Verdict
from calls.review.findings import (
    BargeIn,
    CallDiagnostics,
    Drain,
    SilentSpeech,
    Suspect,
    Thresholds,
    ToolCall,
)
from calls.review.sounds import VERDICTS, AnswerPause, PauseOutcome, TurnVerdict

if TYPE_CHECKING:
    from calls.review.diagnostics import ReviewedCall

WIDTH = 120
_FIGURES_COLUMN = 23  # "1234.567 s  barge-in   ": where an event's figures start
TOOL_ERROR_CHARS = 60  # of a tool's error in its line; the whole is in the JSON
WORDS_CHARS = 60  # of a caller's words in a verdict's line; the whole is in the JSON


@dataclass(frozen=True)
class Totals:
    """What a review examined: calls read, calls shown with suspects, and those calls per rule."""

    examined: int = 0
    with_suspects: int = 0
    by_rule: Mapping[str, int] = field(default_factory=dict)


class TextReport:
    """The text report a piece at a time; each method returns the text to write next."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    def opening(self) -> str:
        return ""

    def call(self, reviewed: ReviewedCall, url: str) -> str:
        return "\n".join(call_lines(reviewed, url, self.tz)) + "\n\n"

    def closing(self, totals: Totals) -> str:
        return "\n".join(summary_lines(totals)) + "\n"


class JsonReport:
    """One JSON document a piece at a time; each method returns the text to write next."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.calls = 0

    def opening(self) -> str:
        head = textwrap.indent(json.dumps(thresholds_json(self.thresholds), indent=2), "  ")
        return f'{{\n  "thresholds": {head.lstrip()},\n  "calls": ['

    def call(self, reviewed: ReviewedCall, url: str) -> str:
        separator = ",\n" if self.calls else "\n"
        self.calls += 1
        return separator + textwrap.indent(json.dumps(call_json(reviewed, url), indent=2), "    ")

    def closing(self, totals: Totals) -> str:
        fields = json.dumps(totals_json(totals), indent=2)[1:-1].strip("\n")  # without braces
        return ("\n  " if self.calls else "") + f"],\n{fields}\n}}\n"


def thresholds_json(thresholds: Thresholds) -> dict[str, Any]:
    """The thresholds the suspects were judged by, durations in ms unless named `_s`."""
    return {
        "suspect_window_ms": thresholds.suspect_window_ms,
        "slow_reaction_ms": thresholds.slow_reaction_ms,
        "slow_link_ms": thresholds.slow_link_ms,
        "unstable_link_ms": thresholds.unstable_link_ms,
        "long_resume_gap_ms": thresholds.long_resume_gap_ms,
        "late_interruption_ms": thresholds.late_interruption_ms,
        "stale_streaming_s": int(thresholds.stale_streaming.total_seconds()),
    }


def call_json(reviewed: ReviewedCall, url: str) -> dict[str, Any]:
    """`CallDiagnostics.to_json()` plus the admin URL, the duration, barge-in onsets and the
    caller sounds counted by verdict."""
    diagnostics = reviewed.diagnostics
    data = diagnostics.to_json()
    data["admin_url"] = url
    data["duration_s"] = _duration_s(diagnostics)
    data["turn_verdict_counts"] = verdict_counts(diagnostics.turn_verdicts)
    for barge_in, onset in zip(data["barge_ins"], reviewed.barge_in_onsets_ms, strict=True):
        barge_in["onset_ms_after_playout_end"] = onset
    return data


def totals_json(totals: Totals) -> dict[str, Any]:
    """The counts, with every rule present (0 when no shown call had it)."""
    return {
        "calls_examined": totals.examined,
        "suspect_calls": totals.with_suspects,
        "suspect_calls_by_rule": {rule: totals.by_rule.get(rule, 0) for rule in FindingRule},
    }


def summary_lines(totals: Totals) -> list[str]:
    """Calls examined, calls with (the chosen) suspects, and how many calls had each rule."""
    if not totals.examined:
        return ["No calls selected."]
    counts = [(rule, totals.by_rule.get(rule, 0)) for rule in FindingRule]
    rules = ", ".join(f"{rule} {count}" for rule, count in counts if count)
    by_rule = f" ({rules})" if rules else ""
    examined = f"{totals.examined} call(s) examined"
    summary = f"Summary: {examined}, {totals.with_suspects} with suspects{by_rule}."
    return textwrap.wrap(summary, WIDTH, subsequent_indent="  ")


def call_lines(reviewed: ReviewedCall, url: str, tz: tzinfo) -> list[str]:
    """A call's header lines (its agent's on a line of its own) and its events in offset
    order, each line at most WIDTH.

    The start is shown to the second in `tz`. The admin link alone may be longer:
    a shortened link is no link.
    """
    d = reviewed.diagnostics
    started = d.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    duration = _duration_s(d)
    figures = [
        f"{d.status} ({d.end_reason or 'no end reason'})",
        f"started {started}",
        "no end" if duration is None else f"{duration:.1f} s",
        f"{d.responses} responses",
    ]
    lines = wrap(f"{d.call_sid}  ", figures, "  ")
    if d.agent_name:  # a line of its own: a full SID leaves the header no room for it
        lines += wrap("  ", [f"agent {d.agent_name}"], "    ")
    lines += wrap("  ", _link_figures(d), "    ")
    if d.turn_verdicts or d.pauses:
        lines += wrap("  ", _sound_counts(d), "    ")
    lines.append(url if len("  admin " + url) > WIDTH else f"  admin {url}")
    for _, event in sorted(_events(reviewed), key=lambda e: _order(e[0])):
        lines += event
    return lines


def verdict_counts(verdicts: Sequence[TurnVerdict]) -> dict[str, int]:
    """How many sounds were judged each verdict: every known verdict (0 when none), then any
    other the rows hold."""
    counts = {str(verdict): 0 for verdict in VERDICTS}
    for judged in verdicts:
        counts[judged.verdict] = counts.get(judged.verdict, 0) + 1
    return counts


def wrap(head: str, parts: Sequence[str], indent: str) -> list[str]:
    """`head` then the parts two spaces apart, in lines of at most WIDTH.

    Lines break between parts, and go on after `indent`; only a part longer than
    a line breaks between words.
    """
    lines: list[str] = []
    line = head
    for part in parts:
        fresh = line in (head, indent)
        separator = "" if fresh else "  "
        if len(line) + len(separator) + len(part) <= WIDTH:
            line += separator + part
        elif not fresh and len(indent) + len(part) <= WIDTH:
            lines.append(line)
            line = indent + part
        else:
            *done, line = textwrap.wrap(
                part,
                WIDTH,
                initial_indent=line + separator,
                subsequent_indent=indent,
                break_on_hyphens=False,
            )
            lines += done
    lines.append(line.rstrip())
    return lines


def heard_cut(heard: str, cut: str, indent: str) -> str:
    """`heard "…" cut "…"` in one line: heard keeps its end, cut its start (the cut point).

    Runs of whitespace become one space. Heard gets the room cut does not need, and at
    least half; cut gets the rest. At most WIDTH when `indent` leaves room for the quotes.
    """
    heard, cut = " ".join(heard.split()), " ".join(cut.split())
    room = WIDTH - len(indent) - len('heard ""  cut ""')
    heard_room = max(room - len(cut), room // 2)
    heard = _keep_end(heard, heard_room)
    cut = _keep_start(cut, room - len(heard))
    return f'{indent}heard "{heard}"  cut "{cut}"'


def _events(reviewed: ReviewedCall) -> Iterable[tuple[int | None, list[str]]]:
    """(offset ms, lines) per event; suspects after the facts at the same offset."""
    d = reviewed.diagnostics
    # A verdict first: an interruption's barge-in, at the same offset, is what it decided.
    for verdict in d.turn_verdicts:
        yield verdict.offset_ms, _event(verdict.offset_ms, "verdict", _verdict(verdict))
    for pause in d.pauses:
        if pause.paused_offset_ms is not None:
            yield pause.paused_offset_ms, _event(pause.paused_offset_ms, "paused", _paused(pause))
        if pause.outcome == PauseOutcome.RESUMED and pause.ended_offset_ms is not None:
            yield pause.ended_offset_ms, _event(pause.ended_offset_ms, "resumed", _resumed(pause))
    for barge_in, onset in zip(d.barge_ins, reviewed.barge_in_onsets_ms, strict=True):
        yield barge_in.offset_ms, _barge_in(barge_in, onset)
    for speech in d.silent_speech:
        yield speech.offset_ms, _silent(speech)
    for tool in d.tool_calls:
        yield tool.offset_ms, _event(tool.offset_ms, "tool", _tool(tool))
    for drain in d.drains:
        offset = (
            drain.ended_offset_ms if drain.started_offset_ms is None else drain.started_offset_ms
        )
        yield offset, _event(offset, "drain", _drain(drain))
    for suspect in d.suspects:
        yield suspect.offset_ms, _suspect(suspect)


def _order(offset_ms: int | None) -> float:
    # Call-wide suspects (no offset) head the list: they colour all the rest.
    return float("-inf") if offset_ms is None else offset_ms


def _barge_in(b: BargeIn, onset_ms: int | None) -> list[str]:
    parts = [
        _onset(onset_ms),
        f"reaction {b.reaction_ms:.1f} ms",
        f"{b.playout_remaining_ms} ms left",
        f"audio_end {_ms(b.audio_end_ms)} ms",
        "cancelled" if b.response_cancelled else "not cancelled",
    ]
    lines = _event(b.offset_ms, "barge-in", parts)
    if b.heard_text or b.cut_text:
        lines.append(heard_cut(b.heard_text, b.cut_text, " " * _FIGURES_COLUMN))
    return lines


def _silent(speech: SilentSpeech) -> list[str]:
    parts = [_onset(speech.onset_ms_after_playout_end), speech.playout_status or "-"]
    return _event(speech.offset_ms, "AI silent", parts)


def _suspect(suspect: Suspect) -> list[str]:
    return _event(suspect.offset_ms, f"! {suspect.rule}", [suspect.message])


def _onset(onset_ms: int | None) -> str:
    if onset_ms is None:
        return "onset unknown"
    if onset_ms == 0:
        return "onset at playout end"
    return f"onset {abs(onset_ms)} ms {'before' if onset_ms < 0 else 'after'} playout end"


def _drain(drain: Drain) -> list[str]:
    expected = f"expected {_ms(drain.expected_wait_ms)} ms"
    target = drain.transfer_target
    if drain.outcome != "completed":
        reason = f" ({drain.cancel_reason})" if drain.cancel_reason else ""
        if not target:
            return [expected, drain.outcome + reason]
        cancelled = drain.outcome == "cancelled"
        transfer = f"transfer to {target} not made" if cancelled else f"for a transfer to {target}"
        return [expected, drain.outcome + reason, transfer]
    parts = [
        expected,
        f"actual {_ms(drain.actual_wait_ms)} ms",
        "final mark echoed" if drain.final_mark_echoed else "final mark NOT echoed",
    ]
    parts += [f"cut off {drain.cut_off_ms} ms"] if drain.cut_off_ms else []
    return parts + ([f"ended in a transfer to {target}"] if target else [])


def _tool(tool: ToolCall) -> list[str]:
    parts = [
        tool.name,
        tool.outcome,
        f"{tool.duration_ms} ms",
        f"dispatch {_tenth(tool.dispatch_ms)} ms",
        f"reply {_tenth(tool.reply_ms)} ms",
    ]
    if tool.error:
        parts.append(f'error "{_keep_start(" ".join(tool.error.split()), TOOL_ERROR_CHARS)}"')
    return parts + (["caller spoke meanwhile"] if tool.caller_spoke else [])


def _sound_counts(d: CallDiagnostics) -> list[str]:
    counts = verdict_counts(d.turn_verdicts)
    by_verdict = ", ".join(f"{verdict} {count}" for verdict, count in counts.items())
    paused = sum(1 for pause in d.pauses if pause.paused_offset_ms is not None)
    resumed = sum(1 for pause in d.pauses if pause.outcome == PauseOutcome.RESUMED)
    return [
        f"caller sounds {len(d.turn_verdicts)} ({by_verdict})",
        f"answer paused {paused}, resumed {resumed}",
    ]


def _verdict(v: TurnVerdict) -> list[str]:
    parts = [v.verdict, f"by {v.decided_by}", f"decided {v.decision_ms} ms"]
    if v.verdict == Verdict.INTERRUPTION:
        if v.interruptible:
            parts.append(f"stopped hearing {_ms(v.stopped_hearing_ms)} ms")
        else:
            parts.append("not interruptible: the passage went on")
    parts.append(f"voice {_ms(v.voice_ms)} ms")
    if v.words:
        parts.append(f'words "{_keep_start(v.words, WORDS_CHARS)}"')
    return parts + (["paused"] if v.paused else [])


def _ran_out(stop_in_ms: int | None) -> str:
    if stop_in_ms is not None and stop_in_ms < 0:
        return f"held, had run out {_ms(-stop_in_ms)} ms before"
    return f"held, ran out in {_ms(stop_in_ms)} ms"


def _paused(pause: AnswerPause) -> list[str]:
    parts = [
        f"item {pause.item_id or '-'}",
        f"heard {_ms(pause.heard_ms)} ms",
        f"requeued {_ms(pause.requeued_ms)} ms",
    ]
    if pause.cleared is False:
        parts[-1] = _ran_out(pause.stop_in_ms)
    if pause.outcome == PauseOutcome.INTERRUPTED:
        return [*parts, "then interrupted"]
    return parts + (["never resumed"] if pause.outcome == PauseOutcome.OPEN else [])


def _resumed(pause: AnswerPause) -> list[str]:
    parts = [f"gap {_ms(pause.gap_ms)} ms"]
    if pause.waits_ms:
        parts.append(f"{_ms(pause.waits_ms)} ms of it waiting for the clear's marks")
    if pause.paused_offset_ms is None:
        return [*parts, "its pause not logged"]
    return parts


def _link_figures(d: CallDiagnostics) -> list[str]:
    link, quality = d.link, d.quality
    if link is not None:
        return [
            f"link round trip p50 {_ms(link.rtt_p50_ms)} / p95 {_ms(link.rtt_p95_ms)} ms",
            f"jitter {_ms(link.jitter_ms)} ms",
            f"({link.samples} samples)",
            f"estimate |error| p95 {_ms(link.estimate_error_p95_ms)} ms",
        ]
    if quality is None:
        return ["link not measured"]
    return [
        "link not measured",
        f"marks: round trip median {_ms(quality.median_round_trip_ms)} ms",
        f"estimate |error| p95 {_ms(quality.p95_abs_error_ms)} ms",
        f"median error {_ms(quality.median_error_ms, signed=True)} ms",
    ]


def _event(offset_ms: int | None, kind: str, parts: Sequence[str]) -> list[str]:
    """An event's lines: `  12.345 s  kind       part  part`, figures aligned when wrapped."""
    at = f"{'-':>8}  " if offset_ms is None else f"{offset_ms / 1000:8.3f} s"
    head = f"{at}  {kind:<9}  "
    return wrap(head, parts, " " * len(head))


def _keep_end(text: str, room: int) -> str:
    """The end of `text` in `room` characters, whole words after an ellipsis when it can."""
    if len(text) <= room:
        return text
    kept = text[len(text) - room + 1 :]
    _, space, words = kept.partition(" ")
    return "…" + (words if space and words else kept)


def _keep_start(text: str, room: int) -> str:
    """The start of `text` in `room` characters, whole words before an ellipsis when it can."""
    if len(text) <= room:
        return text
    kept = text[: room - 1]
    words, space, _ = kept.rpartition(" ")
    return (words if space and words else kept) + "…"


def _duration_s(d: CallDiagnostics) -> float | None:
    if d.ended_at is None:
        return None
    return round((d.ended_at - d.started_at).total_seconds(), 1)


def _tenth(value: float | None) -> str:
    return "-" if value is None else f"{round(value, 1):g}"


def _ms(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+g}" if signed else f"{value:g}"
