"""The staff live view's pages: calls in progress and their moments, as they happen.

The page (`admin:calls_live`, beside the call list in the admin) lists the
calls streaming now (caller, link to the call's page, an "End call" button
for those allowed to end calls); its WebSocket (`calls.paths.LIVE_VIEW_PATH`,
`calls.consumers.LiveViewConsumer`) relays the channel layer's `calls.live`
group (fed by `calls.live.feed` in every process). When the socket drops, the
page says so, reconnects, and reads the calls in progress again
(`admin:calls_live_json`): what happened meanwhile is in the records. The
admin site's login: only active staff with the view permission on calls;
anyone else is refused at the socket's handshake, before a message is sent.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from callcore.records import CallState
from calls.live.control import ask_to_end
from calls.models import CallSession
from calls.paths import LIVE_VIEW_PATH

logger = logging.getLogger(__name__)

VIEW_PERMISSION = "calls.view_callsession"
END_PERMISSION = "calls.end_call"


# Calls the page lists at most (the rest are one click away in the call list).
MAX_LISTED = 500


def _in_progress() -> list[dict[str, Any]]:
    calls = CallSession.objects.filter(status=CallState.STREAMING).order_by("-stream_started_at")
    return [
        {
            "pk": call.pk,
            "call_sid": call.call_sid,
            "from_number": call.from_number,
            "started_at": call.stream_started_at.timestamp() if call.stream_started_at else None,
            "barge_ins": call.barge_in_count,
        }
        for call in calls.only(
            "pk", "call_sid", "from_number", "stream_started_at", "barge_in_count"
        )[:MAX_LISTED]
    ]


def live_calls(request: HttpRequest, admin_site: AdminSite) -> HttpResponse:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    return render(
        request,
        "admin/calls/live.html",
        {
            **admin_site.each_context(request),
            "title": "Calls in progress",
            "calls": _in_progress(),
            "may_end": request.user.has_perm(END_PERMISSION),
            "socket_path": "/" + LIVE_VIEW_PATH,
        },
    )


def live_calls_json(request: HttpRequest) -> JsonResponse:
    """The calls in progress now (the page reads them again after a reconnect)."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    return JsonResponse({"calls": _in_progress()})


@require_POST
def end_live_call(request: HttpRequest, call_sid: str) -> JsonResponse:
    """The page's "End call": whichever process holds the call ends it (audited)."""
    if not request.user.has_perm(END_PERMISSION):
        raise PermissionDenied
    call = CallSession.objects.filter(call_sid=call_sid, status=CallState.STREAMING).first()
    if call is None:
        return JsonResponse({"ended": False, "error": "not in progress"}, status=404)
    try:
        ask_to_end(call, request.user)
    except Exception as exc:  # the layer (Redis) is away: say so, end nothing
        logger.warning("could not ask %s to end: %s", call_sid, type(exc).__name__)
        return JsonResponse({"ended": False, "error": "could not be reached"}, status=503)
    return JsonResponse({"ended": True})
