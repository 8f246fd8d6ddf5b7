"""Twilio request signatures, checked against the configured public URL."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from twilio.request_validator import RequestValidator

from calls.conf import callbridge_settings
from calls.paths import MEDIA_STREAM_PATH

logger = logging.getLogger(__name__)


def public_url(path: str) -> str:
    """The URL Twilio called, as Twilio sees it (behind proxies and tunnels)."""
    return f"{callbridge_settings().PUBLIC_BASE_URL}{path}"


def stream_url() -> str:
    """The media-stream URL put in the TwiML: Twilio requires wss and no query."""
    host = callbridge_settings().PUBLIC_BASE_URL.split("://", 1)[-1]
    return f"wss://{host}/{MEDIA_STREAM_PATH}"


def signature_valid(url: str, params: Mapping[str, Any], signature: str) -> bool:
    token = callbridge_settings().TWILIO_AUTH_TOKEN
    if not signature or not token:
        return False
    return bool(RequestValidator(token).validate(url, params, signature))


AsyncView = Callable[..., Awaitable[HttpResponse]]


def twilio_signed(view: AsyncView) -> AsyncView:
    """Refuse a request whose X-Twilio-Signature does not match (403, nothing done)."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        signature = request.headers.get("X-Twilio-Signature", "")
        url = public_url(request.get_full_path())
        if not signature_valid(url, request.POST, signature):
            logger.warning(
                "rejected Twilio request to %s: %s signature",
                request.path,
                "bad" if signature else "missing",
            )
            return HttpResponseForbidden("invalid signature")
        return await view(request, *args, **kwargs)

    return wrapper
