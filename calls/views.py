"""Twilio's front door: the voice webhook and the status callback."""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

from calls.frontdoor.signatures import stream_url, twilio_signed
from calls.frontdoor.tokens import mint_stream_token
from calls.live.logcontext import call_context
from calls.models import FINAL_STATUSES, CallSession, CallStatus

logger = logging.getLogger(__name__)

_TWIML = "application/xml"


@csrf_exempt
@require_POST
@twilio_signed
def voice_webhook(request: HttpRequest) -> HttpResponse:
    """Answer an incoming call with TwiML that connects it to our media stream.

    Twilio retries a webhook that timed out with the same CallSid: the call
    record is reused, never duplicated.
    """
    call_sid = request.POST.get("CallSid", "")
    if not call_sid:
        logger.warning("voice webhook without CallSid")
        return HttpResponseBadRequest("missing CallSid")
    with call_context(call_sid):
        call, created = CallSession.objects.get_or_create(
            call_sid=call_sid,
            defaults={
                "account_sid": request.POST.get("AccountSid", ""),
                "from_number": request.POST.get("From", ""),
                "to_number": request.POST.get("To", ""),
                "direction": request.POST.get("Direction", ""),
            },
        )
        logger.info("voice webhook: %s call", "new" if created else "retried")
        response = VoiceResponse()
        connect = Connect()
        stream = Stream(url=stream_url())
        # Wall clock: the media stream that checks it may run in another process.
        stream.parameter(name="token", value=mint_stream_token(call.call_sid, time.time()))
        connect.append(stream)
        response.append(connect)
        return HttpResponse(str(response), content_type=_TWIML)


def _stage(status: str) -> int:
    """Ringing, then streaming, then a final status (which is never replaced)."""
    if status in FINAL_STATUSES:
        return 2
    return 1 if status == CallStatus.STREAMING else 0


@csrf_exempt
@require_POST
@twilio_signed
def status_callback(request: HttpRequest) -> HttpResponse:
    """Record the call's final status and end time as Twilio reports them."""
    call_sid = request.POST.get("CallSid", "")
    reported = request.POST.get("CallStatus", "")
    if not call_sid:
        return HttpResponseBadRequest("missing CallSid")
    with call_context(call_sid):
        if reported not in CallStatus.values:
            logger.info("status callback with status %r ignored", reported)
            return HttpResponse(status=204)
        with transaction.atomic():
            call = CallSession.objects.select_for_update().filter(call_sid=call_sid).first()
            if call is None:
                logger.warning("status callback for an unknown call")
                return HttpResponse(status=404)
            fields = []
            # Callbacks can arrive out of order: a call's status never moves back.
            if _stage(reported) > _stage(call.status):
                call.status = reported
                fields.append("status")
            if reported in FINAL_STATUSES and call.ended_at is None:
                call.ended_at = timezone.now()
                fields.append("ended_at")
            if reported in FINAL_STATUSES and not call.end_reason:
                call.end_reason = f"twilio_{reported}"
                fields.append("end_reason")
            if fields:
                call.save(update_fields=fields)
        logger.info("status callback: %s", reported)
        return HttpResponse(status=204)
