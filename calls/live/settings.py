"""The bridge's configuration, read once from Django settings and injected."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from callcore.protocol.realtime import SessionConfig
from playout import PlayoutConfig


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    openai_api_key: str
    openai_websocket_base_url: str | None
    model: str
    session: SessionConfig
    greeting: str
    playout: PlayoutConfig
    uplink_chunk_ms: int = 40
    media_message_ms: int = 100
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_base_url: str = ""

    @property
    def greeting_instructions(self) -> str:
        return f"Greet the caller by saying exactly: {self.greeting}"

    @classmethod
    def from_django(cls) -> BridgeSettings:
        return cls(
            openai_api_key=settings.OPENAI_API_KEY,
            openai_websocket_base_url=settings.OPENAI_WEBSOCKET_BASE_URL,
            model=settings.OPENAI_REALTIME_MODEL,
            session=SessionConfig(
                instructions=settings.AGENT_INSTRUCTIONS,
                voice=settings.OPENAI_VOICE,
                vad_threshold=settings.OPENAI_VAD_THRESHOLD,
                prefix_padding_ms=settings.OPENAI_VAD_PREFIX_PADDING_MS,
                silence_duration_ms=settings.OPENAI_VAD_SILENCE_DURATION_MS,
            ),
            greeting=settings.AGENT_GREETING,
            uplink_chunk_ms=settings.UPLINK_CHUNK_MS,
            media_message_ms=settings.TWILIO_MEDIA_MESSAGE_MS,
            playout=PlayoutConfig(
                frame_ms=settings.PLAYOUT_FRAME_MS,
                grace_ms=settings.PLAYOUT_GRACE_MS,
                link_rtt_prior_ms=settings.PLAYOUT_LINK_RTT_PRIOR_MS,
                link_jitter_prior_ms=settings.PLAYOUT_LINK_JITTER_PRIOR_MS,
                lead_ms=settings.PLAYOUT_LEAD_MS,
                refill_ms=settings.PLAYOUT_REFILL_MS,
                drain_margin_ms=settings.PLAYOUT_DRAIN_MARGIN_MS,
            ),
            twilio_account_sid=settings.TWILIO_ACCOUNT_SID,
            twilio_auth_token=settings.TWILIO_AUTH_TOKEN,
            twilio_api_base_url=settings.TWILIO_API_BASE_URL,
        )
