"""Ending a call through Twilio's REST API (blocking; run it in a thread)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from twilio.rest import Client

if TYPE_CHECKING:
    from calls.live.config import BridgeConfig

logger = logging.getLogger(__name__)


def complete_call(config: BridgeConfig, call_sid: str) -> None:
    client = Client(config.twilio_account_sid, config.twilio_auth_token)
    if config.twilio_api_base_url:
        client.api.base_url = config.twilio_api_base_url
    client.calls(call_sid).update(status="completed")
    logger.info("call completed through the REST API")
