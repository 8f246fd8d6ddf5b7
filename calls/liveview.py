"""The staff live view: calls in progress and their moments, as they happen.

The page (`/admin/live/`) lists the calls streaming now; its WebSocket
(`/admin/live/ws/`) relays the channel layer's `calls.live` group (fed by
`calls.live.feed` in every process). Django session authentication: only
active staff with the view permission on calls; anyone else is refused at
the handshake, before a message is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from calls.live.feed import LIVE_GROUP
from calls.models import CallSession, CallStatus

logger = logging.getLogger(__name__)

VIEW_PERMISSION = "calls.view_callsession"
LAYER_TIMEOUT_S = 2.0


@staff_member_required
def live_calls(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    calls = CallSession.objects.filter(status=CallStatus.STREAMING).order_by("-stream_started_at")
    return render(
        request,
        "admin/calls/live.html",
        {"title": "Calls in progress", "calls": calls[:500], "site_header": "callbridge"},
    )


def _allowed(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(VIEW_PERMISSION)
    )


class LiveViewConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        user = self.scope.get("user")
        if not await database_sync_to_async(_allowed)(user):
            logger.warning("live view refused: not staff with the view permission")
            await self.close(code=4403)
            return
        try:
            await asyncio.wait_for(
                self.channel_layer.group_add(LIVE_GROUP, self.channel_name), LAYER_TIMEOUT_S
            )
        except Exception as exc:
            logger.warning("live view unavailable: channel layer (%s)", type(exc).__name__)
            await self.close(code=1013)  # try again later
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.channel_layer.group_discard(LIVE_GROUP, self.channel_name), LAYER_TIMEOUT_S
            )

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Events go straight out: Channels' default dispatch first closes stale
        # database connections on the sync thread, a thread hop per message that
        # this consumer (no database after connect) does not need.
        if message["type"] == "live.events":
            relayed_at = time.time()
            for event in message["events"]:
                await self.send_json({**event, "relayed_at": relayed_at})
            return
        await super().dispatch(message)
