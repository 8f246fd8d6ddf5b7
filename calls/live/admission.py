"""Who may stream: a media stream's admission, from its signed handshake to its claimed call.

The consumer asks twice: at the handshake (`handshake`, Twilio's signature)
and at `start` (`admit`: the per-call token, the media format, the model
session, one stream per call, a handed-over call's re-claim). Each answer is
`Admitted` or `Refused`, the close code and the reason for the log line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from callcore.conversation import Turn
from callcore.protocol.twilio import Start
from callcore.records import CallState
from calls.agents import Agent
from calls.frontdoor.signatures import signature_valid, stream_url
from calls.frontdoor.tokens import verify_stream_token
from calls.live.config import BridgeConfig
from calls.live.handover import conversation_so_far, reclaim
from calls.live.process import CallProcess
from calls.live.realtime import (
    Connecting,
    OpenedModel,
    connect_timed,
    discard_connecting,
    open_session,
)
from calls.models import CallSession

logger = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's).
CLOSE_BAD_SIGNATURE = 4403
CLOSE_BAD_TOKEN = 4401
CLOSE_UNKNOWN_CALL = 4404
CLOSE_STREAM_EXISTS = 4409
CLOSE_MEDIA_FORMAT = 4415


@dataclass(frozen=True, slots=True)
class Refused:
    code: int
    reason: str  # safe to log


@dataclass(frozen=True, slots=True)
class Admitted:
    """A stream that may bridge its call: the call's row, its model session (opened
    ahead or opening), and, for a handed-over call, the conversation so far."""

    call_pk: int
    call_sid: str
    from_number: str
    to_number: str
    config: BridgeConfig
    model: asyncio.Future[OpenedModel]
    resumed: tuple[Turn, ...]
    started_mono: float
    started_wall: datetime  # the same moment, wall clock


def handshake(signature: str) -> Refused | None:
    """Twilio signs the WebSocket handshake over the stream URL; None when it is valid."""
    if signature_valid(stream_url(), {}, signature):
        return None
    return Refused(CLOSE_BAD_SIGNATURE, f"{'bad' if signature else 'missing'} handshake signature")


async def admit(start: Start, process: CallProcess) -> Admitted | Refused:
    """The stream's `start`: may it bridge its call? Claims the call if so."""
    # Wall clock on purpose: the token was minted by another process (the
    # webhook), and monotonic clocks are not comparable across processes.
    problem = verify_stream_token(
        start.custom_parameters.get("token", ""), start.call_sid, time.time()
    )
    if problem is not None:
        return Refused(CLOSE_BAD_TOKEN, f"stream token {problem}")
    if not start.media_format_ok:
        return Refused(
            CLOSE_MEDIA_FORMAT,
            f"mediaFormat {start.media_format}; this service takes audio/x-mulaw at "
            "8000 Hz, 1 channel",
        )
    started_mono = time.monotonic()
    started_wall = timezone.now()
    # The model session was opened at the voice webhook for the call's agent, if
    # that ran in this process; else it connects now, while the database claims
    # the stream (and tells the call's agent), and is configured for the agent
    # then. Either way the greeting starts sooner, and a refused stream closes it.
    connecting: Connecting | None = None
    if not process.preopened.waiting(start.call_sid):
        connecting = asyncio.ensure_future(connect_timed(BridgeConfig.from_django()))
    try:
        claimed = await process.db.run(_claim, start)
    except BaseException:
        if connecting is not None:
            discard_connecting(connecting)
        raise
    if isinstance(claimed, Refused):
        if connecting is not None:
            discard_connecting(connecting)
        process.preopened.discard(start.call_sid)
        return claimed
    call_pk, handovers, from_number, to_number, stored_agent = claimed
    config = BridgeConfig.from_django(Agent.from_stored(stored_agent) if stored_agent else None)
    open_anew = functools.partial(open_session, config)
    model = process.preopened.take(start.call_sid, open_anew) or asyncio.ensure_future(
        open_session(config, connecting=connecting)
    )
    resumed: list[Turn] = []
    if handovers:
        resumed = await process.db.run(conversation_so_far, call_pk)
    return Admitted(
        call_pk,
        start.call_sid,
        from_number,
        to_number,
        config,
        model,
        tuple(resumed),
        started_mono,
        started_wall,
    )


def _claim(start: Start) -> tuple[int, int, str, str, dict[str, Any]] | Refused:
    """The call, now streaming (its pk, handovers so far, numbers and agent); or why this
    stream is refused.

    One stream per call: a replayed token must not open a second session. The
    check and the claim are one conditional UPDATE, atomic on every database.
    A call that is not claimable so may be one a shutdown handed over
    (`calls.live.handover.reclaim`).
    """
    now = timezone.now()
    streaming = {
        "stream_sid": start.stream_sid,
        "status": CallState.STREAMING,
        "stream_started_at": now,
        "alive_at": now,
    }
    call_sid = start.call_sid
    claimed = CallSession.objects.filter(
        call_sid=call_sid, stream_sid="", ended_at__isnull=True
    ).update(**streaming)
    if not claimed:
        claimed = reclaim(call_sid, start.stream_sid, streaming, now)
    try:
        call = CallSession.objects.get(call_sid=call_sid)
    except CallSession.DoesNotExist:
        return Refused(CLOSE_UNKNOWN_CALL, "no such call")
    if not claimed:
        return Refused(CLOSE_STREAM_EXISTS, "the call already had a stream")
    if not call.account_sid and start.account_sid:
        # A call the voice webhook did not tell us the account of (it always does).
        CallSession.objects.filter(pk=call.pk, account_sid="").update(account_sid=start.account_sid)
    return call.pk, call.handovers, call.from_number, call.to_number, call.agent or {}
