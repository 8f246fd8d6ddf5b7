"""End the calls whose process died (no liveness mark for CALL_LOST_AFTER_S) as `server_lost`.

The serving processes do this themselves every CALL_ALIVE_INTERVAL_S (see
`calls.live.liveness`); run this from cron only if no process may be left
running calls (for example after taking a whole deployment down).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from calls.live.liveness import reap_lost_calls


class Command(BaseCommand):
    help = "End streaming calls that lost their process, as server_lost."

    def handle(self, *args: Any, **options: Any) -> None:
        reaped = reap_lost_calls(held=[])
        self.stdout.write(f"{len(reaped)} call(s) ended as server_lost")
        for call_sid in reaped:
            self.stdout.write(f"  {call_sid}")
