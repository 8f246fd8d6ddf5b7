"""Twilio's front door: the voice webhook and the status callback.

Async views: the request is handled on the event loop and only the database
work goes to a thread (the call path's own, `calls.live.db`), so a burst of
incoming calls costs one thread hop each (see `calls.frontdoor.handler`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from django.core.handlers.asgi import ASGIRequest
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.voice_response import Connect, Dial, Stream, VoiceResponse

from callcore.records import (
    FINAL_STATES,
    AfterStream,
    CallState,
    after_stream,
    twilio_end_reason,
)
from calls.agents import Agent, CallInfo
from calls.conf import CallbridgeSettings, callbridge_settings
from calls.frontdoor.signatures import public_url, stream_url, twilio_signed
from calls.frontdoor.tokens import mint_stream_token
from calls.live.config import BridgeConfig, default_agent
from calls.live.logcontext import call_context
from calls.live.process import CallProcess, current
from calls.live.realtime import (
    Connecting,
    connect_timed,
    discard_connecting,
    open_session,
)
from calls.models import CallSession
from calls.review.stored import review_calls

logger = logging.getLogger(__name__)

_TWIML = "application/xml"


def _answer(call_sid: str, fields: dict[str, str]) -> tuple[str, bool]:
    """The call's row (a Twilio retry reuses it, never duplicates it): its SID, and whether new.

    Nearly every webhook is a new call's: its row is inserted straight away (one
    statement, half the CPU of `get_or_create`'s look-up first); the unique SID
    turns a retry's insert into a read of the row the first one made.
    """
    try:
        with transaction.atomic():
            CallSession.objects.create(call_sid=call_sid, **fields)
    except IntegrityError:
        if not CallSession.objects.filter(call_sid=call_sid).exists():
            raise  # not a retry: something else the database refused
        return call_sid, False
    return call_sid, True


@csrf_exempt
@require_POST
@twilio_signed
async def voice_webhook(request: HttpRequest) -> HttpResponse:
    """Answer an incoming call with TwiML that connects it to our media stream."""
    call_sid = request.POST.get("CallSid", "")
    if not call_sid:
        logger.warning("voice webhook without CallSid")
        return HttpResponseBadRequest("missing CallSid")
    with call_context(call_sid):
        post = request.POST
        info = CallInfo(
            call_sid=call_sid,
            from_number=post.get("From", ""),
            to_number=post.get("To", ""),
            account_sid=post.get("AccountSid", ""),
            direction=post.get("Direction", ""),
            parameters=post.dict(),
        )
        process = current()
        settings = callbridge_settings()
        refused = process.load.admit(call_sid, len(process.roster))
        if refused is not None:
            return _turn_away(refused, settings.OVERFLOW_NUMBER)
        try:
            return await _take(request, process, settings, info)
        except BaseException:
            process.load.release(call_sid)
            raise


async def _take(
    request: HttpRequest, process: CallProcess, settings: CallbridgeSettings, info: CallInfo
) -> HttpResponse:
    """The call is admitted: its agent, its row, its model session opened ahead, TwiML."""
    call_sid = info.call_sid
    # The model session connects while the host's hooks choose the call's agent
    # (bounded; the default when they fail); it is configured for the agent then.
    connecting = _connect_ahead(request)
    try:
        agent, source = await process.tools.choose_agent(
            info, default_agent(settings), settings.AGENT_HOOK_TIMEOUT_S
        )
    except BaseException:
        _drop(connecting)
        raise
    fields = {
        "account_sid": info.account_sid,
        "from_number": info.from_number,
        "to_number": info.to_number,
        "direction": info.direction,
        "agent_name": agent.name[:100],
        "agent": {**agent.stored(), "source": str(source)},
    }
    try:
        call_sid, created = await process.db.run(_answer, call_sid, fields)
    except BaseException:
        _drop(connecting)
        raise
    logger.info("voice webhook: %s call, agent %s (%s)", _new(created), agent.name, source)
    if created and connecting is not None:
        # Only for a new call: a retried (or replayed) webhook opens nothing more.
        _open_model_ahead(call_sid, agent, connecting)
    else:
        _drop(connecting)
    response = VoiceResponse()
    response.append(_connect(call_sid))
    return HttpResponse(str(response), content_type=_TWIML)


def _turn_away(reason: str, overflow: str) -> HttpResponse:
    """This process cannot take the call and keep the truth of those in flight: Twilio
    dials the overflow number, or rejects the call as busy (the caller's phone says so)."""
    where = "dialling the overflow number" if overflow else "rejected as busy"
    logger.warning("new call turned away, %s: %s", where, reason)
    response = VoiceResponse()
    if overflow:
        response.append(_dial(overflow))
    else:
        response.reject(reason="busy")
    return HttpResponse(str(response), content_type=_TWIML)


def _new(created: bool) -> str:
    return "new" if created else "retried"


def _connect_ahead(request: HttpRequest) -> Connecting | None:
    """Start connecting the call's model session now, for its stream's `start`
    (`calls.live.preopen`); None where nothing is opened ahead.

    Only where the event loop outlives this request and serves the stream: an
    ASGI server's (Django's synchronous test client runs each request on a
    loop of its own, and gets nothing opened). Not while this process hands
    its calls over, nor past the sessions it lets wait. Whatever goes wrong
    here, the caller is still answered: the stream then opens its session at
    `start`.
    """
    process = current()
    if not isinstance(request, ASGIRequest) or process.shutdown.draining:
        return None
    if not process.preopened.accepting():
        return None
    try:
        return asyncio.ensure_future(connect_timed(BridgeConfig.from_django()))
    except Exception:
        logger.exception("could not start connecting the model session ahead")
        return None


def _open_model_ahead(call_sid: str, agent: Agent, connecting: Connecting) -> None:
    """Configure the connecting session for the call's agent, for its stream to take."""
    try:
        config = BridgeConfig.from_django(agent)
        opener = functools.partial(open_session, config, ahead=True, connecting=connecting)
        if current().preopened.open(call_sid, opener) is None:
            _drop(connecting)
    except Exception:
        _drop(connecting)
        logger.exception("could not start opening the model session ahead")


def _drop(connecting: Connecting | None) -> None:
    if connecting is not None:
        discard_connecting(connecting)


# Twilio may ask before the closing process has written why (it writes the end
# before closing the stream, bounded): how long to wait for it, and how often to look.
_END_REASON_WAIT_S = 1.5
_END_REASON_POLL_S = 0.05


def _end_reason(call_sid: str) -> str | None:
    return (
        CallSession.objects.filter(call_sid=call_sid).values_list("end_reason", flat=True).first()
    )


async def _wait_end_reason(call_sid: str) -> str | None:
    deadline = time.monotonic() + _END_REASON_WAIT_S
    while True:
        reason = await current().db.run(_end_reason, call_sid)
        if reason or time.monotonic() >= deadline:
            return reason
        # Another process writes it, with no event to await here: poll, bounded.
        await asyncio.sleep(_END_REASON_POLL_S)


def _connect(call_sid: str) -> Connect:
    """`<Connect action=stream-ended><Stream>` with a fresh per-call token."""
    # When our stream closes with the caller still on the line, Twilio asks
    # `stream-ended` what to do next (instead of dropping the call in silence).
    connect = Connect(action=public_url("/twilio/stream-ended/"))
    stream = Stream(url=stream_url())
    # Wall clock: the media stream that checks it may run in another process.
    stream.parameter(name="token", value=mint_stream_token(call_sid, time.time()))
    connect.append(stream)
    return connect


@csrf_exempt
@require_POST
@twilio_signed
async def stream_ended(request: HttpRequest) -> HttpResponse:
    """Twilio's `<Connect action>`: our media stream closed and the caller is still there.

    A server that shut down (a deploy) hands the call over: a new
    `<Connect><Stream>`, which lands on a live process that carries the
    conversation on. A call the AI or an operator ended hangs up. Anything
    else (the model could not be reached or kept, a fault) is an apology
    first: never silence, never a caller left wondering.
    """
    call_sid = request.POST.get("CallSid", "")
    with call_context(call_sid):
        reason = await _wait_end_reason(call_sid) if call_sid else None
        response = VoiceResponse()
        next_step = after_stream(reason)
        if next_step is AfterStream.HAND_OVER:
            logger.info("stream ended by a shutdown: handing the call over to a new stream")
            response.append(_connect(call_sid))
            return HttpResponse(str(response), content_type=_TWIML)
        if next_step is AfterStream.DIAL:
            number = await current().db.run(_transfer_number, call_sid)
            if number:
                logger.info("stream ended by a transfer: dialling its target")
                response.append(_dial(number))
                return HttpResponse(str(response), content_type=_TWIML)
            logger.error("a transferred call without a target number: apologising")
            next_step = AfterStream.APOLOGISE
        if next_step is AfterStream.APOLOGISE:
            logger.info("stream ended (%s): apologising to the caller", reason or "reason unknown")
            response.say(callbridge_settings().CALL_APOLOGY)
        response.hangup()
        return HttpResponse(str(response), content_type=_TWIML)


def _transfer_number(call_sid: str) -> str:
    """The number (or SIP address) of the target a transferred call was handed to."""
    row = CallSession.objects.filter(call_sid=call_sid).values("transfer_target", "agent").first()
    if row is None or not row["transfer_target"]:
        return ""
    targets = (row["agent"] or {}).get("transfer_targets") or {}
    number = targets.get(row["transfer_target"], "")
    return number if isinstance(number, str) else ""


def _dial(number: str) -> Dial:
    dial = Dial()
    if number.startswith("sip:"):
        dial.sip(number)
    else:
        dial.number(number)
    return dial


def _stage(status: str) -> int:
    """Ringing, then streaming, then a final status (which is never replaced)."""
    if status in FINAL_STATES:
        return 2
    return 1 if status == CallState.STREAMING else 0


def _record_status(call_sid: str, reported: str) -> bool:
    """Apply a reported status to the call's row; False if there is no such call."""
    with transaction.atomic():
        call = CallSession.objects.select_for_update().filter(call_sid=call_sid).first()
        if call is None:
            return False
        fields = []
        # Callbacks can arrive out of order: a call's status never moves back.
        if _stage(reported) > _stage(call.status):
            call.status = reported
            fields.append("status")
        if reported in FINAL_STATES and call.ended_at is None:
            call.ended_at = timezone.now()
            fields.append("ended_at")
        if reported in FINAL_STATES and not call.end_reason:
            call.end_reason = twilio_end_reason(reported)
            fields.append("end_reason")
        if fields:
            call.save(update_fields=fields)
    if fields and reported in FINAL_STATES and call.stream_started_at is None:
        # A call that never streamed ends here; a streamed one is reviewed by its
        # process's beat once its final rows are in (reviewing it now could store a
        # review of rows still on their way, over the right one).
        try:
            review_calls([call.pk])
        except Exception:
            logger.warning("review of the call left for later", exc_info=True)
    return True


@csrf_exempt
@require_POST
@twilio_signed
async def status_callback(request: HttpRequest) -> HttpResponse:
    """Record the call's final status and end time as Twilio reports them."""
    call_sid = request.POST.get("CallSid", "")
    reported = request.POST.get("CallStatus", "")
    if not call_sid:
        return HttpResponseBadRequest("missing CallSid")
    with call_context(call_sid):
        if reported not in set(CallState):
            logger.info("status callback with status %r ignored", reported)
            return HttpResponse(status=204)
        if reported in FINAL_STATES:
            # Ended before its stream started here: the session opened for it goes.
            current().preopened.discard(call_sid)
        if not await current().db.run(_record_status, call_sid, reported):
            logger.warning("status callback for an unknown call")
            return HttpResponse(status=404)
        logger.info("status callback: %s", reported)
        return HttpResponse(status=204)
