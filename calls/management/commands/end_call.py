"""End a live call from the command line, whichever process holds it.

    manage.py end_call CA0123...  [--by "who"]

The request goes over the channel layer (Redis in production) to the
process holding the call, which ends it as `operator_hangup`. With the
in-memory layer only the process that holds the call could be reached, so
the command refuses: set REDIS_URL.
"""

from __future__ import annotations

import getpass
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from callcore.records import CallState
from calls.live.control import request_end
from calls.models import CallSession


class Command(BaseCommand):
    help = "End a live call (operator_hangup), whichever process holds it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("call_sid")
        parser.add_argument("--by", default="", help="who asks (recorded); default: this user")

    def handle(self, *args: Any, **options: Any) -> None:
        call_sid: str = options["call_sid"]
        backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
        if backend.endswith("InMemoryChannelLayer"):
            raise CommandError(
                "the in-memory channel layer cannot reach the server's processes: use "
                "channels-redis (in the reference host, set REDIS_URL)"
            )
        call = CallSession.objects.filter(call_sid=call_sid).first()
        if call is None:
            raise CommandError(f"no call {call_sid}")
        if call.status != CallState.STREAMING:
            raise CommandError(f"call {call_sid} is not live ({call.status})")
        by = options["by"] or f"manage.py end_call ({getpass.getuser()})"
        async_to_sync(request_end)(call_sid, by)
        self.stdout.write(f"asked the process holding {call_sid} to end it")
