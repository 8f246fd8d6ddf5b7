"""The bridge's configuration, read once from Django settings and injected."""

from __future__ import annotations

from dataclasses import dataclass

from callcore.protocol.realtime import SessionConfig
from calls.conf import callbridge_settings
from playout import PlayoutConfig


@dataclass(frozen=True, slots=True)
class BridgeConfig:
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
    model_response_timeout_ms: int = 5000
    model_max_recoveries: int = 2
    model_ping_interval_s: float = 5.0
    model_ping_timeout_s: float = 5.0

    @property
    def greeting_instructions(self) -> str:
        return f"Greet the caller by saying exactly: {self.greeting}"

    @classmethod
    def from_django(cls) -> BridgeConfig:
        """From `CALLBRIDGE`, validated (`ImproperlyConfigured` names what is wrong)."""
        settings = callbridge_settings()
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
                input_transcription_model=settings.OPENAI_INPUT_TRANSCRIPTION_MODEL,
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
                start_hold_ms=settings.PLAYOUT_START_HOLD_MS,
                start_fill_ms=settings.PLAYOUT_START_FILL_MS,
                mark_interval_ms=settings.PLAYOUT_MARK_INTERVAL_MS,
                drain_margin_ms=settings.PLAYOUT_DRAIN_MARGIN_MS,
            ),
            twilio_account_sid=settings.TWILIO_ACCOUNT_SID,
            twilio_auth_token=settings.TWILIO_AUTH_TOKEN,
            twilio_api_base_url=settings.TWILIO_API_BASE_URL,
            model_response_timeout_ms=settings.MODEL_RESPONSE_TIMEOUT_MS,
            model_max_recoveries=settings.MODEL_MAX_RECOVERIES,
            model_ping_interval_s=settings.MODEL_PING_INTERVAL_S,
            model_ping_timeout_s=settings.MODEL_PING_TIMEOUT_S,
        )
