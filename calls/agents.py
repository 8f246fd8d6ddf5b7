"""The agent that answers a call, chosen per call by the host's hooks (`CALLBRIDGE["AGENT_HOOKS"]`).

    from calls.agents import Agent, AgentHooks, CallInfo

    class Hooks(AgentHooks):
        def agent_for_call(self, call: CallInfo, default: Agent) -> Agent | None:
            customer = Customer.objects.filter(phone=call.from_number).first()
            if customer is None:
                return None  # the default agent
            return Agent(
                name="orders",
                instructions=f"You help {customer.name} with their orders...",
                greeting=f"Hello {customer.name}, how can I help?",
                tools=("order_status",),
                transfer_targets={"billing": "+15551230000"},
            )

The hook is asked at the voice webhook, before the call's model session is
configured, with what Twilio sent. Its time is bounded
(`AGENT_HOOK_TIMEOUT_S`): a hook that is slower, raises or returns something
else than an `Agent` or None gives the call the default agent (built from
`CALLBRIDGE`'s `AGENT_*` settings) and a log line, never a failed call. A
sync hook runs on a thread of the tools' pool (the ORM is available); an
async one on the event loop. What agent a call had is stored on its row and
shown in its review.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["Agent", "AgentHooks", "AgentSource", "CallInfo", "load_hooks"]


@dataclass(frozen=True, slots=True)
class Agent:
    """Who the AI is on one call.

    Empty strings and None take the default agent's value (the `CALLBRIDGE`
    settings): an agent gives only what differs.
    """

    name: str = "default"
    instructions: str = ""
    # One of the Realtime voices (`marin`, `cedar`, ...).
    voice: str = ""
    # What the agent says first; None: the default agent's greeting; "": none (the
    # agent waits for the caller to speak).
    greeting: str | None = None
    # Names of registered tools (`calls.tools.tool`) this agent may call.
    tools: tuple[str, ...] = ()
    # Where the agent may transfer the caller: a name the model chooses -> a phone
    # number (E.164) or SIP address that Twilio's `<Dial>` calls.
    transfer_targets: Mapping[str, str] = field(default_factory=dict)
    # The language the agent speaks (and the caller's words are written down in), e.g. "en".
    language: str = ""
    # Turn-taking: server VAD's knobs (None: the settings').
    vad_threshold: float | None = None
    silence_duration_ms: int | None = None
    prefix_padding_ms: int | None = None
    # The caller's voice this long while the agent speaks interrupts it, whatever they
    # say (None: `TURN_INTERRUPT_AFTER_MS`); shorter sounds are judged by their words.
    interrupt_after_ms: int | None = None
    # Phrases that never interrupt the agent ("uh-huh") and ones that always do
    # ("stop"), in the call's language; None: the built-in ones of `language`.
    backchannels: tuple[str, ...] | None = None
    stop_phrases: tuple[str, ...] | None = None
    # False: the greeting is a passage heard whole (a legal notice); the caller's
    # speech does not cut it and is answered once it has been heard.
    greeting_interruptible: bool = True

    def over(self, default: Agent) -> Agent:
        """This agent with `default`'s values wherever it gives none."""
        chosen: dict[str, Any] = {}
        for key in ("instructions", "voice", "language"):
            if not getattr(self, key):
                chosen[key] = getattr(default, key)
        for key in (
            "greeting",
            "vad_threshold",
            "silence_duration_ms",
            "prefix_padding_ms",
            "interrupt_after_ms",
            "backchannels",
            "stop_phrases",
        ):
            if getattr(self, key) is None:
                chosen[key] = getattr(default, key)
        return replace(self, **chosen)

    def stored(self) -> dict[str, Any]:
        """As the call's row keeps it (JSON)."""
        values = asdict(self)
        values["tools"] = list(self.tools)
        values["transfer_targets"] = dict(self.transfer_targets)
        for key in ("backchannels", "stop_phrases"):
            phrases = getattr(self, key)
            values[key] = None if phrases is None else list(phrases)
        return values

    @classmethod
    def from_stored(cls, values: Mapping[str, Any]) -> Agent:
        """From the call's row (`stored`); keys it does not know are left out."""
        known = {key: values[key] for key in cls.__dataclass_fields__ if key in values}
        known["tools"] = tuple(known.get("tools") or ())
        known["transfer_targets"] = dict(known.get("transfer_targets") or {})
        for key in ("backchannels", "stop_phrases"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        return cls(**known)


class AgentSource(enum.StrEnum):
    """Where a call's agent came from (stored with it, shown in the review)."""

    HOOK = "hook"
    DEFAULT = "default"  # no hook, or the hook chose none
    DEFAULT_AFTER_ERROR = "default_after_error"  # the hook raised or returned nonsense
    DEFAULT_AFTER_TIMEOUT = "default_after_timeout"  # the hook took too long


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What Twilio's voice webhook said of a call. `parameters`: every field it posted
    (custom ones included: a SIP header, a `<Parameter>` of an earlier TwiML...)."""

    call_sid: str
    from_number: str
    to_number: str
    account_sid: str = ""
    direction: str = ""
    parameters: Mapping[str, str] = field(default_factory=dict)


# Argument names a tool's record never shows (the default redaction).
_SECRET_NAMES = re.compile(
    r"card|cvv|cvc|pin|password|passcode|secret|token|ssn|social.?security|iban|account.?number",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


class AgentHooks:
    """What a host decides; subclass it and name the subclass in `CALLBRIDGE["AGENT_HOOKS"]`.

    `agent_for_call` and `keypad` may be coroutine functions instead;
    `redact_tool_arguments` runs on the event loop as each tool starts, so it
    must be plain, quick code (no database, no I/O). One instance serves the
    process (it must be safe to call from several threads at once).
    """

    def agent_for_call(self, call: CallInfo, default: Agent) -> Agent | None:
        """The call's agent; None: `default`. Fields left empty take `default`'s values."""
        return None

    def redact_tool_arguments(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """What of a tool call's arguments the call's record keeps (the tool gets them all).

        The default hides values whose names look like secrets (card, pin,
        password, token...), at any depth.
        """
        redacted: dict[str, Any] = _redact(arguments)
        return redacted

    def keypad(self, call_sid: str, digits: str) -> None:
        """The caller typed `digits` on the keypad (the model is told them too).

        Called off the audio path, after the digits went to the model; its
        time and errors never touch the call.
        """


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if _SECRET_NAMES.search(str(key)) else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


def load_hooks(path: str) -> AgentHooks:
    """An instance of the hooks class at dotted `path` (`ImportError`/`TypeError` if it is
    not one: the system check `callbridge.E008` names it before any call)."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted path to a class")
    found = getattr(importlib.import_module(module_name), class_name, None)
    if found is None:
        raise ImportError(f"{module_name} has no {class_name}")
    if not (isinstance(found, type) and issubclass(found, AgentHooks)):
        raise TypeError(f"{path} is not a subclass of calls.agents.AgentHooks")
    if inspect.iscoroutinefunction(found.redact_tool_arguments):
        raise TypeError(f"{path}.redact_tool_arguments must be a plain function, not async")
    return found()


def chooses_agents(hooks: AgentHooks) -> bool:
    """Whether `hooks` overrides `agent_for_call` (else every call gets the default agent)."""
    return type(hooks).agent_for_call is not AgentHooks.agent_for_call
