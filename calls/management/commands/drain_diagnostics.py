"""The `drain_diagnostics` command: review calls' barge-ins, caller sounds, tool calls, drains
and suspects."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from django.utils import timezone

from callcore.records import FindingRule
from calls.conf import callbridge_settings
from calls.review.diagnostics import (
    CallRow,
    ReviewedCall,
    call_chunks,
    find_calls,
    parse_since,
    reviewed_calls,
)
from calls.review.findings import Thresholds
from calls.review.report import JsonReport, TextReport, Totals

RULES = tuple(FindingRule)  # the suspect rules, in the findings' order


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
        "Per call: a header with its figures, its caller sounds counted by verdict and its "
        "admin link, then its barge-ins, speech while the AI was judged silent, caller "
        "sounds judged and the answer's pauses and resumes, tool calls, hangup and transfer "
        "drains and suspects in time order. "
        "Selects the 20 most recent calls unless told otherwise; calls are read and "
        "printed a chunk at a time, so any selection runs in bounded memory."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--call",
            action="append",
            metavar="SID",
            help="only this call: a SID or a unique SID prefix of 6 characters or more "
            "(repeatable)",
        )
        parser.add_argument(
            "--since",
            metavar="WHEN",
            help="calls started since an ISO date/datetime or a duration ago (2h, 30m, 7d)",
        )
        parser.add_argument(
            "--last", type=_whole_number(1), metavar="N", help="at most the N most recent calls"
        )
        parser.add_argument(
            "--rule",
            action="append",
            choices=RULES,
            metavar="RULE",
            help=f"only calls with this suspect, showing only such suspects (repeatable; "
            f"one of {', '.join(RULES)})",
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
            "--long-resume-gap-ms",
            type=_whole_number(0),
            default=Thresholds.long_resume_gap_ms,
            help="an answer resumed after more silence than this, paused while a caller's "
            "sound was judged, is suspect (default %(default)s)",
        )
        parser.add_argument(
            "--late-interruption-ms",
            type=_whole_number(0),
            default=Thresholds.late_interruption_ms,
            help="an interruption the caller went on hearing the AI through for longer than "
            "this, from when they began, is suspect (default %(default)s)",
        )
        parser.add_argument(
            "--suspects-only", action="store_true", help="list only calls with suspects"
        )
        parser.add_argument(
            "--base-url",
            metavar="URL",
            help="makes admin links absolute, e.g. https://calls.example.com "
            "(default: CALLBRIDGE['REVIEW_BASE_URL'], else links are paths)",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        prefixes: list[str] = options["call"] or []
        if prefixes and (options["since"] or options["last"]):
            raise CommandError("--call cannot be combined with --since or --last")
        try:
            since = parse_since(options["since"], now) if options["since"] else None
        except ValueError as error:
            raise CommandError(f"--since: {error}") from None
        thresholds = Thresholds(
            suspect_window_ms=options["suspect_window_ms"],
            slow_reaction_ms=options["slow_reaction_ms"],
            slow_link_ms=options["slow_link_ms"],
            unstable_link_ms=options["unstable_link_ms"],
            long_resume_gap_ms=options["long_resume_gap_ms"],
            late_interruption_ms=options["late_interruption_ms"],
        )
        chunks: Iterable[Sequence[CallRow]]
        if prefixes:
            try:
                chunks = [find_calls(prefixes)]
            except ValueError as error:
                raise CommandError(f"--call: {error}") from None
        else:
            chunks = call_chunks(since=since, last=options["last"])
        base_url = options["base_url"]
        if base_url is None:
            base_url = callbridge_settings().REVIEW_BASE_URL
        tally = Tally(frozenset(options["rule"] or ()), options["suspects_only"])
        report: JsonReport | TextReport
        if options["json"]:
            report = JsonReport(thresholds)
        else:
            report = TextReport(timezone.get_current_timezone())
        self.stdout.write(report.opening(), ending="")
        for reviewed in reviewed_calls(chunks, thresholds, now):
            shown = tally.take(reviewed)
            if shown is not None:
                self.stdout.write(report.call(shown, admin_url(shown.pk, base_url)), ending="")
        self.stdout.write(report.closing(tally.totals()), ending="")


class Tally:
    """Which calls are shown, with which suspects, and the counts for the summary."""

    def __init__(self, rules: frozenset[str], suspects_only: bool) -> None:
        self.rules = rules
        self.suspects_only = suspects_only or bool(rules)
        self.examined = 0
        self.with_suspects = 0
        self.by_rule: Counter[str] = Counter()

    def take(self, reviewed: ReviewedCall) -> ReviewedCall | None:
        """The call as shown (only the chosen rules' suspects), or None to leave it out."""
        self.examined += 1
        diagnostics = reviewed.diagnostics
        if self.rules:
            suspects = [s for s in diagnostics.suspects if s.rule in self.rules]
            diagnostics = replace(diagnostics, suspects=suspects)
            reviewed = replace(reviewed, diagnostics=diagnostics)
        if diagnostics.suspects:
            self.with_suspects += 1
            self.by_rule.update({s.rule for s in diagnostics.suspects})
        elif self.suspects_only:
            return None
        return reviewed

    def totals(self) -> Totals:
        """The counts so far, for the report's summary."""
        return Totals(self.examined, self.with_suspects, dict(self.by_rule))


def admin_url(pk: int, base_url: str) -> str:
    """The call's admin change page; absolute when a base URL is given."""
    path: str = reverse("admin:calls_callsession_change", args=[pk])
    return base_url.rstrip("/") + path if base_url else path
