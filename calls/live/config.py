"""The bridge's configuration, read once from Django settings and injected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from callcore.protocol.realtime import SessionConfig
from callcore.turns import TurnPolicy, default_backchannels, default_stop_phrases
from calls.agents import Agent
from calls.conf import CallbridgeSettings, callbridge_settings
from calls.tools import registered_tools
from playout import PlayoutConfig

N = TypeVar("N", int, float)


def default_agent(settings: CallbridgeSettings | None = None) -> Agent:
    """The agent of a call the host's hooks chose none for: the `AGENT_*` settings."""
    settings = settings or callbridge_settings()
    return Agent(
        name="default",
        instructions=settings.AGENT_INSTRUCTIONS,
        voice=settings.OPENAI_VOICE,
        greeting=settings.AGENT_GREETING,
        vad_threshold=settings.OPENAI_VAD_THRESHOLD,
        silence_duration_ms=settings.OPENAI_VAD_SILENCE_DURATION_MS,
        prefix_padding_ms=settings.OPENAI_VAD_PREFIX_PADDING_MS,
        interrupt_after_ms=settings.TURN_INTERRUPT_AFTER_MS,
    )


def _turns(agent: Agent, settings: CallbridgeSettings) -> TurnPolicy:
    """How the agent's calls judge the caller's sounds (its own phrases, or its language's)."""
    return TurnPolicy(
        interrupt_after_ms=_or(agent.interrupt_after_ms, settings.TURN_INTERRUPT_AFTER_MS),
        stop_target_ms=settings.TURN_STOP_TARGET_MS,
        voice_end_ms=settings.TURN_VOICE_END_MS,
        backchannels=(
            default_backchannels(agent.language)
            if agent.backchannels is None
            else agent.backchannels
        ),
        stop_phrases=(
            default_stop_phrases(agent.language)
            if agent.stop_phrases is None
            else agent.stop_phrases
        ),
    )


def _instructions(agent: Agent) -> str:
    if not agent.language:
        return agent.instructions
    return f"{agent.instructions}\n\nSpeak the language with code {agent.language!r}."


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
    # The call's agent (`calls.agents`): its name, the tools it may call, where it may
    # transfer the caller to (name -> number).
    agent_name: str = "default"
    tools: frozenset[str] = frozenset()
    transfer_targets: Mapping[str, str] = field(default_factory=dict)
    tool_timeout_s: float = 10.0
    tool_hold_after_ms: int = 1000
    tool_hold_instructions: str = ""
    keypad_pause_ms: int = 1500
    turns: TurnPolicy = field(default_factory=TurnPolicy)
    greeting_interruptible: bool = True

    @property
    def greeting_instructions(self) -> str:
        return f"Greet the caller by saying exactly: {self.greeting}"

    @classmethod
    def from_django(cls, agent: Agent | None = None) -> BridgeConfig:
        """From `CALLBRIDGE`, validated (`ImproperlyConfigured` names what is wrong), for
        `agent` (None: the default agent); the agent's empty fields take the default's."""
        settings = callbridge_settings()
        default = default_agent(settings)
        agent = default if agent is None else agent.over(default)
        registry = registered_tools()
        tools = tuple(name for name in agent.tools if name in registry)
        return cls(
            openai_api_key=settings.OPENAI_API_KEY,
            openai_websocket_base_url=settings.OPENAI_WEBSOCKET_BASE_URL,
            model=settings.OPENAI_REALTIME_MODEL,
            session=SessionConfig(
                instructions=_instructions(agent),
                voice=agent.voice,
                vad_threshold=_or(agent.vad_threshold, settings.OPENAI_VAD_THRESHOLD),
                prefix_padding_ms=_or(
                    agent.prefix_padding_ms, settings.OPENAI_VAD_PREFIX_PADDING_MS
                ),
                silence_duration_ms=_or(
                    agent.silence_duration_ms, settings.OPENAI_VAD_SILENCE_DURATION_MS
                ),
                input_transcription_model=settings.OPENAI_INPUT_TRANSCRIPTION_MODEL,
                language=agent.language,
                tools=tuple(registry[name].definition() for name in tools),
                transfer_targets=tuple(agent.transfer_targets),
            ),
            agent_name=agent.name,
            tools=frozenset(tools),
            transfer_targets=dict(agent.transfer_targets),
            tool_timeout_s=settings.TOOL_TIMEOUT_S,
            tool_hold_after_ms=settings.TOOL_HOLD_AFTER_MS,
            # A response's instructions replace the session's: the agent's own go first,
            # so the holding line keeps its voice, manner and language.
            tool_hold_instructions=f"{_instructions(agent)}\n\n{settings.TOOL_HOLD_INSTRUCTIONS}",
            keypad_pause_ms=settings.KEYPAD_PAUSE_MS,
            turns=_turns(agent, settings),
            greeting_interruptible=agent.greeting_interruptible,
            greeting=agent.greeting or "",
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


def _or(value: N | None, default: N) -> N:
    return default if value is None else value
