"""Ending a call through Twilio's REST API (blocking; run it in a thread)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from twilio.rest import Client

if TYPE_CHECKING:
    from calls.live.settings import BridgeSettings

logger = logging.getLogger(__name__)


def complete_call(settings: BridgeSettings, call_sid: str) -> None:
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token)
    if settings.twilio_api_base_url:
        client.api.base_url = settings.twilio_api_base_url
    client.calls(call_sid).update(status="completed")
    logger.info("call completed through the REST API")
