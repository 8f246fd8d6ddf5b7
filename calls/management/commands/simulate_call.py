"""Run simulated calls through the real stack and print what happened."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.urls import reverse

from callcore.records import RecordKind
from calls.demo.simulation import ScenarioResult, database_url, describe, run_scenario
from simulators.link import LinkProfile
from simulators.scenarios import BY_NAME, DEMO, GREETING, SCENARIOS, Scenario
from simulators.stack import REFERENCE, LocalStack, Project, StackError, frozen_heap

# Where a development server answers (`make serve-dev`, `runserver`: their defaults).
ADMIN = "http://127.0.0.1:8000"


def serves(project: Project, scenario: Scenario) -> bool:
    """Whether `project` is known to give the scenario's caller the agent it needs. Every
    host gives the default one; the tool and transfer scenarios need an agent with the
    shop's tools for its demo customer: the reference host's (`make demo` seeds the
    customer: `manage.py seed_shop`), or a host's own that does as the README's example
    (named with `--scenario`, they run in any host, and their verdict says)."""
    if scenario.expect.agent is None:
        return True
    return (
        project.root.resolve() == REFERENCE.root.resolve()
        and project.asgi_app == REFERENCE.asgi_app
    )


def manage_command() -> str:
    """How to run this project's `manage.py` as this command was run: the same
    interpreter and, when the environment chose it, the same settings module
    (the reference host's `manage.py` defaults to production, which refuses
    the development values the demo ran with)."""
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(Path.cwd()))
    except ValueError:
        shown = str(python)
    chosen = os.environ.get("DJANGO_SETTINGS_MODULE")
    prefix = f"DJANGO_SETTINGS_MODULE={shlex.quote(chosen)} " if chosen else ""
    return f"{prefix}{shlex.quote(shown)} manage.py"


class Command(BaseCommand):
    help = (
        "Run named call scenarios end to end: the project served by Daphne on a local port, "
        "a simulated Twilio caller and a simulated OpenAI Realtime server on real sockets. "
        "Prints each call's timeline and a verdict, and leaves the calls in the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        choice = parser.add_mutually_exclusive_group(required=True)
        choice.add_argument(
            "--scenario", action="append", choices=sorted(BY_NAME), help="repeatable"
        )
        choice.add_argument("--all", action="store_true", help="every scenario, with a summary")
        choice.add_argument(
            "--demo", action="store_true", help="the demo set: barge-in, goodbye, tools, transfer"
        )
        choice.add_argument("--list", action="store_true", help="list the scenarios and exit")
        parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
        parser.add_argument("--quiet", action="store_true", help="verdicts only, no timelines")
        parser.add_argument(
            "--delay-ms",
            type=float,
            default=0.0,
            help=(
                "one-way delay between Twilio and the server, each way (default: the "
                "scenario's own link, 60 ms + 40 for those of several-item answers, else 0)"
            ),
        )
        parser.add_argument(
            "--jitter-ms",
            type=float,
            default=0.0,
            help="plus up to this much jitter per message, order kept (default 0)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verbosity"] < 2:
            # The simulators narrate every step; the timeline below says what matters.
            logging.getLogger("simulators").setLevel(logging.WARNING)
        if options["list"]:
            for scenario in SCENARIOS:
                self.stdout.write(f"{scenario.name:<24} {scenario.title}")
            return
        try:
            url = database_url(connection.settings_dict)
            project = Project.running()
        except (ValueError, StackError) as exc:
            raise CommandError(str(exc)) from None
        if options["all"]:
            chosen = list(SCENARIOS)
        elif options["demo"]:
            chosen = [BY_NAME[name] for name in DEMO]
        else:
            chosen = [BY_NAME[name] for name in options["scenario"]]
        unsure = [s.name for s in chosen if not serves(project, s)]
        if unsure and options["scenario"]:
            self.stdout.write(
                f"{', '.join(unsure)}: the caller needs an agent with the shop's tools (the "
                "reference host's, or one like the README's example); the verdict says"
            )
        elif unsure:
            chosen = [s for s in chosen if serves(project, s)]
            self.stdout.write(
                f"Left out: {', '.join(unsure)} (they call as the reference host's demo "
                "customer, whom only that host's shop agent serves)"
            )
        if options["delay_ms"] < 0 or options["jitter_ms"] < 0:
            raise CommandError("--delay-ms and --jitter-ms must be >= 0")
        link = LinkProfile(options["delay_ms"], options["jitter_ms"])
        try:
            results = asyncio.run(
                self._run(chosen, url, project, options["server"], options["quiet"], link)
            )
        except StackError as exc:
            raise CommandError(str(exc)) from None
        if len(results) > 1:
            self._summary(results)
        self._admin_hint(results)
        if not all(result.passed for result in results):
            raise CommandError("some scenarios failed; see the checks above")

    async def _run(
        self,
        chosen: list[Scenario],
        url: str,
        project: Project,
        server: str,
        quiet: bool,
        link: LinkProfile,
    ) -> list[ScenarioResult]:
        self.stdout.write(f"Starting the stack ({server} on a local port, Realtime simulator)...")
        results = []
        async with LocalStack(
            database_url=url,
            server=server,  # type: ignore[arg-type]
            env={"AGENT_GREETING": GREETING},
            project=project,
        ) as stack:
            for number, scenario in enumerate(chosen, 1):
                self.stdout.write(
                    self.style.MIGRATE_HEADING(f"\n[{number}/{len(chosen)}] {scenario.title}")
                    + f"  ({scenario.name})"
                )
                self.stdout.write(f"  {scenario.story}")
                started = time.monotonic()
                with frozen_heap():  # no collection stalls the callers for 100 ms
                    result = await run_scenario(
                        stack, scenario, link=None if link.is_instant else link
                    )
                results.append(result)
                if not quiet:
                    self.stdout.write("\n".join(describe(result)))
                self._verdict(result, time.monotonic() - started)
        return results

    def _verdict(self, result: ScenarioResult, elapsed_s: float) -> None:
        for check in result.checks:
            mark = self.style.SUCCESS("ok  ") if check.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"    {mark} {check.name}: {check.detail}")
        verdict = self.style.SUCCESS("PASS") if result.passed else self.style.ERROR("FAIL")
        self.stdout.write(f"  verdict: {verdict}  (call {result.call_sid}, {elapsed_s:.1f} s)")

    def _summary(self, results: list[ScenarioResult]) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING("\nSummary"))
        width = max(len("scenario"), *(len(result.scenario.name) for result in results))
        ends = [result.call.end_reason if result.call else "?" for result in results]
        end_width = max(len("end"), *(len(end) for end in ends))
        self.stdout.write(
            f"  {'scenario':<{width}} {'verdict':<8} {'barge-ins':>9} {'remaining':>10} "
            f"{'end':<{end_width}} tools"
        )
        for result, end in zip(results, ends, strict=True):
            event = result.barge_ins[0] if result.barge_ins else None
            remaining = f"{event.playout_remaining_ms} ms" if event else "-"
            verdict = "PASS" if result.passed else "FAIL"
            tools = [str(row.details.get("name")) for row in result.logs_of(RecordKind.TOOL_CALL)]
            self.stdout.write(
                f"  {result.scenario.name:<{width}} {verdict:<8} {len(result.barge_ins):>9} "
                f"{remaining:>10} {end:<{end_width}} {', '.join(tools) or '-'}"
            )
        passed = sum(result.passed for result in results)
        self.stdout.write(f"  {passed} of {len(results)} scenarios passed")

    def _admin_hint(self, results: list[ScenarioResult]) -> None:
        calls = [result.call for result in results if result.call is not None]
        if not calls:
            return
        manage = manage_command()
        self.stdout.write(self.style.MIGRATE_HEADING("\nReview the calls in the admin"))
        self.stdout.write(f"  {manage} createsuperuser   # once")
        self.stdout.write(f"  {manage} runserver         # then open:")
        self.stdout.write(f"  {ADMIN}{reverse('admin:calls_callsession_changelist')}")
        for call in calls[:3]:
            self.stdout.write(f"  {ADMIN}{_change_path(call.pk)}")
        self.stdout.write(f"  {manage} drain_diagnostics --last {len(calls)}")
        self._flagged_hint(results)

    def _flagged_hint(self, results: list[ScenarioResult]) -> None:
        """The calls the review flags as suspect (its rules decide), and where to look."""
        flagged = [
            result
            for result in results
            if result.call is not None and result.diagnostics and result.diagnostics.suspects
        ]
        if not flagged:
            return
        self.stdout.write(
            self.style.MIGRATE_HEADING(f"\nThe review flags {len(flagged)} call(s): look at these")
        )
        rules: dict[str, None] = {}  # in order of appearance
        for result in flagged:
            self.stdout.write(f"  {result.call_sid} ({result.scenario.name})")
            for suspect in result.diagnostics.suspects:
                self.stdout.write(f"    ! {suspect.rule}: {suspect.message}")
                rules.setdefault(suspect.rule)
            self.stdout.write(f"    {ADMIN}{_change_path(result.call.pk)}")
        changelist = reverse("admin:calls_callsession_changelist")
        for rule in rules:
            self.stdout.write(f"  Every call flagged {rule}:")
            self.stdout.write(f"    {ADMIN}{changelist}?finding={rule}")
            self.stdout.write(f"    {manage_command()} drain_diagnostics --rule {rule}")


def _change_path(pk: int) -> str:
    return reverse("admin:calls_callsession_change", args=[pk])
