"""The agent that answered a call and where the call was handed, in a reviewer's words.

Pure: a call's stored `agent_name`, `agent` (the dict the voice webhook recorded),
`end_reason` and `transfer_target` in; what its page shows out. A call recorded
before agents has an empty dict: it shows as such, never as an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callcore.records import EndReason, ended_by

# Where the agent came from (the `source` the webhook recorded), in words.
SOURCES = {
    "hook": "chosen by the host's hook",
    "default": "the default agent (the host's hook chose none)",
    "default_after_error": "the default agent: the host's hook failed",
    "default_after_timeout": "the default agent: the host's hook took too long",
}
# Instructions longer than this, or of several lines, are folded behind their start.
INSTRUCTIONS_PREVIEW_CHARS = 120


@dataclass(frozen=True)
class AgentFacts:
    """What a call's page says of its agent; "" where the record says nothing."""

    name: str
    source: str
    voice: str
    language: str
    tools: tuple[str, ...]
    transfer_targets: tuple[tuple[str, str], ...]  # (name, number)
    turn_detection: str
    greeting: str
    instructions: str
    instructions_preview: str  # its start, when the whole is folded; else ""

    @property
    def recorded(self) -> bool:
        return bool(self.name or self.source or self.instructions)


@dataclass(frozen=True)
class Transfer:
    """Where a transferred call was handed: the target, and the call's end in words."""

    target: str  # "name (number)", or "" when not recorded
    end_reason: str
    reason_label: str
    ended_by: str

    @property
    def transferred(self) -> bool:
        """The call ended in the transfer (Twilio dialled the target after the stream)."""
        return self.end_reason == EndReason.TRANSFERRED


def agent_facts(agent_name: str, agent: Mapping[str, object]) -> AgentFacts:
    """The agent as the call recorded it (`CallSession.agent_name` and `.agent`)."""
    source = _text(agent.get("source"))
    instructions = _text(agent.get("instructions")).strip()
    folded = len(instructions) > INSTRUCTIONS_PREVIEW_CHARS or "\n" in instructions
    preview = instructions.split("\n", 1)[0][:INSTRUCTIONS_PREVIEW_CHARS].rstrip()
    tools = agent.get("tools")
    targets = agent.get("transfer_targets")
    return AgentFacts(
        name=agent_name or _text(agent.get("name")),
        source=SOURCES.get(source, source),
        voice=_text(agent.get("voice")),
        language=_text(agent.get("language")),
        tools=tuple(_text(t) for t in tools) if isinstance(tools, list) else (),
        transfer_targets=tuple((_text(k), _text(v)) for k, v in sorted(targets.items()))
        if isinstance(targets, Mapping)
        else (),
        turn_detection=_turn_detection(agent),
        greeting=_text(agent.get("greeting")),
        instructions=instructions,
        instructions_preview=preview + "…" if folded else "",
    )


def transfer_of(
    end_reason: str, transfer_target: str, agent: Mapping[str, object]
) -> Transfer | None:
    """The call's transfer, when it was transferred or handed to a target; else None.

    The stored target is its name (a key of the agent's `transfer_targets`); its
    number is added from there when the agent lists it.
    """
    if end_reason != EndReason.TRANSFERRED and not transfer_target:
        return None
    reason = EndReason.of(end_reason)
    return Transfer(
        target=target_with_number(transfer_target, agent),
        end_reason=end_reason or "-",
        reason_label=reason.label if reason is not None else (end_reason or "not ended"),
        ended_by=ended_by(end_reason) if end_reason else "",
    )


def target_with_number(target: str, agent: Mapping[str, object]) -> str:
    """ "name (number)" for a target the agent lists; the stored words as they are if not."""
    targets = agent.get("transfer_targets")
    number = targets.get(target) if isinstance(targets, Mapping) and target else None
    return f"{target} ({number})" if isinstance(number, str) and number else target


def _turn_detection(agent: Mapping[str, object]) -> str:
    parts = []
    if (threshold := agent.get("vad_threshold")) is not None:
        parts.append(f"VAD threshold {threshold}")
    if (silence := agent.get("silence_duration_ms")) is not None:
        parts.append(f"silence {silence} ms")
    if (padding := agent.get("prefix_padding_ms")) is not None:
        parts.append(f"prefix padding {padding} ms")
    return ", ".join(parts)


def _text(value: object) -> str:
    return "" if value is None else str(value)
