"""Control of live calls across processes, on Channels' channel layer.

Every live call's consumer subscribes to a group of its own (`call_group`);
`request_end` (the admin's "End call", `manage.py end_call`) sends it a
message from any process, and the process holding the call ends it.

The layer is never on the call's path: the subscription runs in a task of
its own, and when the layer fails (Redis gone or slow) it says so once,
retries with backoff and subscribes again by itself; the call never waits
for it and never ends because of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

END_MESSAGE = "call.end"
# How long a group operation may take before the layer counts as unavailable.
LAYER_TIMEOUT_S = 2.0
_RETRY_MIN_S = 0.5
_RETRY_MAX_S = 5.0


def call_group(call_sid: str) -> str:
    """The group of one call (group names: ASCII letters, digits, hyphens, periods)."""
    return "call." + re.sub(r"[^A-Za-z0-9.-]", "", call_sid)[:80]


async def request_end(call_sid: str, by: str = "") -> None:
    """Ask whichever process holds `call_sid` to end it (no answer: fire and forget)."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    await asyncio.wait_for(
        layer.group_send(call_group(call_sid), {"type": END_MESSAGE, "by": by[:150]}),
        LAYER_TIMEOUT_S,
    )


def ask_to_end(call: Any, user: Any) -> None:
    """An operator (`user`) ends a live call from the admin: asked of its process, audited
    in the admin log. Raises when the channel layer cannot carry the request."""
    from asgiref.sync import async_to_sync
    from django.contrib.admin.models import CHANGE, LogEntry

    async_to_sync(request_end)(call.call_sid, f"admin ({user.get_username()})")
    LogEntry.objects.log_actions(
        user.pk,
        [call],
        CHANGE,
        change_message="Asked to end the live call (operator_hangup)",
        single_object=True,
    )


class ControlListener:
    """One live call's subscription to its group, in a task of its own."""

    def __init__(self, call_sid: str, on_end: Callable[[str], Awaitable[None]]) -> None:
        self.group = call_group(call_sid)
        self._on_end = on_end
        self._task: asyncio.Task[None] | None = None
        self._channel: str | None = None
        self._layer: Any = None

    def start(self) -> None:
        self._layer = get_channel_layer()
        if self._layer is not None:
            self._task = asyncio.create_task(self._run(), name=f"control-{self.group}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._layer.group_discard(self.group, self._channel), LAYER_TIMEOUT_S
                )

    async def _run(self) -> None:
        layer = self._layer
        retry_s = _RETRY_MIN_S
        failing = False
        while True:
            try:
                # `asyncio.timeout`, not `wait_for`, which on Python 3.11 can swallow the
                # cancel that stops this task (see `calls.live.feed`).
                async with asyncio.timeout(LAYER_TIMEOUT_S):
                    if self._channel is None:
                        self._channel = await layer.new_channel()
                    await layer.group_add(self.group, self._channel)
                if failing:
                    logger.info("channel layer back: this call can be controlled again")
                    failing = False
                retry_s = _RETRY_MIN_S
                while True:
                    message = await layer.receive(self._channel)
                    if message.get("type") == END_MESSAGE:
                        await self._on_end(str(message.get("by", "")))
                        return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    logger.warning(
                        "channel layer unavailable (%s): this call cannot be controlled "
                        "until it is back; the call goes on",
                        type(exc).__name__,
                    )
                    failing = True
                await asyncio.sleep(retry_s)
                retry_s = min(2 * retry_s, _RETRY_MAX_S)
