"""The `drain_diagnostics` command: review calls' barge-ins, drains and suspects."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from calls.review.diagnostics import load_diagnostics, parse_since, select_calls
from calls.review.findings import CallDiagnostics, Drain, Thresholds


def _whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be {minimum} or more")
        return value

    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or value != value:  # NaN is not a threshold
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


class Command(BaseCommand):
    help = (
        "Per call: responses, AI audio, barge-ins, speech while the AI was judged silent, "
        "hangup drains and playout-estimate quality, with suspect calls flagged. "
        "Selects the 20 most recent calls unless told otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--call", metavar="SID", help="only this call SID")
        parser.add_argument(
            "--since",
            metavar="WHEN",
            help="calls started since an ISO date/datetime or a duration ago (2h, 30m, 7d)",
        )
        parser.add_argument(
            "--last", type=_whole_number(1), metavar="N", help="at most the N most recent calls"
        )
        parser.add_argument(
            "--suspect-window-ms",
            type=_whole_number(0),
            default=Thresholds.suspect_window_ms,
            help="'AI silent' speech this soon after playout ended is a likely missed "
            "barge-in (default %(default)s)",
        )
        parser.add_argument(
            "--slow-reaction-ms",
            type=_non_negative_float,
            default=Thresholds.slow_reaction_ms,
            help="a barge-in reaction slower than this is suspect (default %(default)s)",
        )
        parser.add_argument(
            "--slow-link-ms",
            type=_whole_number(0),
            default=Thresholds.slow_link_ms,
            help="a link to Twilio with a round trip p95 above this is suspect "
            "(default %(default)s)",
        )
        parser.add_argument(
            "--unstable-link-ms",
            type=_whole_number(0),
            default=Thresholds.unstable_link_ms,
            help="a link to Twilio with more jitter than this is suspect (default %(default)s)",
        )
        parser.add_argument(
            "--suspects-only", action="store_true", help="list only calls with suspects"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        call_sid: str | None = options["call"]
        if call_sid is not None and (options["since"] or options["last"]):
            raise CommandError("--call selects one call; it cannot be combined with --since/--last")
        try:
            since = parse_since(options["since"], now) if options["since"] else None
        except ValueError as error:
            raise CommandError(f"--since: {error}") from None
        thresholds = Thresholds(
            suspect_window_ms=options["suspect_window_ms"],
            slow_reaction_ms=options["slow_reaction_ms"],
            slow_link_ms=options["slow_link_ms"],
            unstable_link_ms=options["unstable_link_ms"],
        )
        calls = select_calls(call_sid=call_sid, since=since, last=options["last"])
        results = load_diagnostics(calls, thresholds, now)
        if call_sid is not None and not results:
            raise CommandError(f"no call with SID {call_sid!r}")
        if options["suspects_only"]:
            results = [result for result in results if result.suspects]
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(results, thresholds), indent=2))
        else:
            self.stdout.write(render_table(results))


def _as_json(results: list[CallDiagnostics], thresholds: Thresholds) -> dict[str, Any]:
    return {
        "thresholds": {
            "suspect_window_ms": thresholds.suspect_window_ms,
            "slow_reaction_ms": thresholds.slow_reaction_ms,
            "slow_link_ms": thresholds.slow_link_ms,
            "unstable_link_ms": thresholds.unstable_link_ms,
            "stale_streaming_s": int(thresholds.stale_streaming.total_seconds()),
        },
        "calls": [result.to_json() for result in results],
        "suspect_calls": sum(1 for result in results if result.suspects),
    }


_COLUMNS = (
    ("call SID", "<"),
    ("status", "<"),
    ("started (UTC)", "<"),
    ("resp", ">"),
    ("AI audio s", ">"),
    ("barge-ins", ">"),
    ("AI silent", ">"),
    ("drains", ">"),
    ("est err med/p95 ms", ">"),
    ("echo rtt med ms", ">"),
    ("suspects", ">"),
)


def render_table(results: list[CallDiagnostics]) -> str:
    """A summary table, one line per call, then the details of every call with events."""
    if not results:
        return "No calls selected."
    rows = [_summary_row(result) for result in results]
    widths = [
        max(len(title), *(len(row[i]) for row in rows)) for i, (title, _) in enumerate(_COLUMNS)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(cells, _COLUMNS, widths, strict=True)
        ).rstrip()

    out = [line([title for title, _ in _COLUMNS]), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    for result in results:
        if result.barge_ins or result.silent_speech or result.drains or result.suspects:
            out += ["", *_details(result)]
    suspect_calls = sum(1 for result in results if result.suspects)
    out += ["", f"{len(results)} call(s), {suspect_calls} with suspects."]
    return "\n".join(out)


def _summary_row(result: CallDiagnostics) -> list[str]:
    quality = result.quality
    error = rtt = "-"
    if quality is not None:
        error = f"{_ms(quality.median_error_ms, signed=True)}/{_ms(quality.p95_abs_error_ms)}"
        rtt = _ms(quality.median_round_trip_ms)
    return [
        result.call_sid,
        result.status,
        result.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        str(result.responses),
        f"{result.ai_audio_ms / 1000:.1f}",
        str(len(result.barge_ins)),
        str(len(result.silent_speech)),
        str(len(result.drains)),
        error,
        rtt,
        f"! {len(result.suspects)}" if result.suspects else "",
    ]


def _details(result: CallDiagnostics) -> list[str]:
    ended = result.ended_at.isoformat() if result.ended_at else "no ended_at"
    out = [f"{result.call_sid} ({result.status}, {ended}, end: {result.end_reason or '-'})"]
    if result.link is not None:
        link = result.link
        out.append(
            f"  link       round trip p50 {_ms(link.rtt_p50_ms)} / p95 {_ms(link.rtt_p95_ms)} ms  "
            f"jitter {_ms(link.jitter_ms)} ms  ({link.samples} samples)  "
            f"estimate |error| p95 {_ms(link.estimate_error_p95_ms)} ms"
        )
    for b in result.barge_ins:
        out.append(
            f"  barge-in   at {_s(b.offset_ms)}  playout_remaining {b.playout_remaining_ms} ms  "
            f"audio_end {_ms(b.audio_end_ms)} ms  reaction {b.reaction_ms:.1f} ms  "
            f"{'cancelled' if b.response_cancelled else 'not cancelled'}"
        )
        if b.heard_text or b.cut_text:
            out.append(f'             heard: "{b.heard_text}"  cut: "{b.cut_text}"')
    for speech in result.silent_speech:
        out.append(f"  AI silent  at {_s(speech.offset_ms)}  {speech.playout_status or '-'}")
    out += [f"  drain      {_drain(drain)}" for drain in result.drains]
    out += [f"  ! {s.rule:<24} {_s(s.offset_ms)}  {s.message}" for s in result.suspects]
    return out


def _drain(drain: Drain) -> str:
    where = f"at {_s(drain.started_offset_ms)}"
    expected = f"expected {_ms(drain.expected_wait_ms)} ms"
    if drain.outcome != "completed":
        reason = f" ({drain.cancel_reason})" if drain.cancel_reason else ""
        return f"{where}  {expected}  {drain.outcome}{reason}"
    echoed = "final mark echoed" if drain.final_mark_echoed else "final mark NOT echoed"
    cut = f"  cut off {drain.cut_off_ms} ms" if drain.cut_off_ms else ""
    return f"{where}  {expected}  actual {_ms(drain.actual_wait_ms)} ms  {echoed}{cut}"


def _s(offset_ms: int | None) -> str:
    return "   -    " if offset_ms is None else f"{offset_ms / 1000:7.3f}s"


def _ms(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+g}" if signed else f"{value:g}"
