"""Store the review (counters and findings) of calls that ended without one.

Each process's beat stores a call's review as its final records are written;
this command is for rows written before that existed, or after the rules
change (`--all`). It works in chunks, so it runs in bounded memory at any size.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from callcore.records import FINAL_STATES
from calls.models import CallSession
from calls.review.diagnostics import parse_since
from calls.review.stored import CHUNK, review_calls


class Command(BaseCommand):
    help = "Store counters and findings for ended calls that have none (or for all: --all)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--all", action="store_true", help="review every ended call again")
        parser.add_argument("--since", help="only calls started since (2h, 7d, an ISO date)")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        calls = CallSession.objects.filter(
            Q(ended_at__isnull=False) | Q(status__in=list(FINAL_STATES))
        )
        if not options["all"]:
            calls = calls.filter(reviewed_at__isnull=True)
        if options["since"]:
            try:
                calls = calls.filter(started_at__gte=parse_since(options["since"], now))
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        pks = calls.order_by("pk").values_list("pk", flat=True)
        reviewed = 0
        last = 0
        while chunk := list(pks.filter(pk__gt=last)[:CHUNK]):
            reviewed += review_calls(chunk, now)
            last = chunk[-1]
            if options["verbosity"] > 1:
                self.stdout.write(f"  {reviewed} calls reviewed")
        flagged = CallSession.objects.filter(reviewed_at=now, suspect_count__gt=0).count()
        self.stdout.write(f"{reviewed} call(s) reviewed, {flagged} with suspects")
