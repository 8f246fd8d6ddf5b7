"""The call platform's settings: one namespace, `CALLBRIDGE = {...}`, defined here once.

Every key, with its type, default, range and what it does, is a field of
`CallbridgeSettings`; nothing else in the module reads Django settings for
the platform, and nothing reads the environment (the host does: the
reference host in `config/` fills `CALLBRIDGE` from it). A misspelled key, a
value of the wrong type or out of range, a missing secret or two values that
contradict each other is a system-check error with a stable id (`problems`,
registered in `calls.checks`), and the same validation fails closed when the
platform first reads its settings (`callbridge_settings`), since the ASGI
servers do not run system checks.

    CALLBRIDGE = {
        "PUBLIC_BASE_URL": "https://calls.example.com",
        "TWILIO_AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN", ""),
        "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", ""),
    }

`python -m calls.conf` prints the table of settings the README shows.
"""

from __future__ import annotations

import difflib
import functools
import math
import sys
import types
from collections.abc import Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Final, get_type_hints
from urllib.parse import urlsplit

#: The Django setting that holds the platform's settings.
NAMESPACE: Final = "CALLBRIDGE"

# --- the check ids (stable: hosts silence them by id) ------------------------------------

NOT_A_DICT: Final = "callbridge.E001"
UNKNOWN_KEY: Final = "callbridge.E002"
WRONG_TYPE: Final = "callbridge.E003"
OUT_OF_RANGE: Final = "callbridge.E004"
MISSING_VALUE: Final = "callbridge.E005"
CONTRADICTION: Final = "callbridge.E006"
WEBHOOKS_NOT_ROUTED: Final = "callbridge.E007"
HOOKS_UNUSABLE: Final = "callbridge.E008"


@dataclass(frozen=True, slots=True)
class Spec:
    """What a setting is: its group in the docs, what it does, and what it may hold."""

    group: str
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    # A value the platform cannot do without (a secret, or where Twilio reaches it).
    required: bool = False
    secret: bool = False
    # Its value must be a multiple of this (durations in frames).
    step: int | None = None
    # Its value must start with one of these (an address, with a host)...
    schemes: tuple[str, ...] = ()
    # ...and with the first of them when Django's DEBUG is off...
    secure_unless_debug: bool = False
    # ...unless its host is this machine (a stand-in on loopback: nothing leaves the
    # machine in clear).
    clear_on_loopback: bool = False
    # An origin only: scheme and host, no path, query or fragment.
    origin_only: bool = False


def _setting(default: Any, spec: Spec) -> Any:
    return field(default=default, metadata={"spec": spec})


TWILIO = "Twilio"
OPENAI = "OpenAI Realtime"
AGENT = "The agent"
CALLS = "Calls and processes"
PLAYOUT = "Playout (what the caller hears)"
REVIEW = "Review"


@dataclass(frozen=True, slots=True)
class CallbridgeSettings:
    """The platform's settings, each a key of `CALLBRIDGE` (named as the field)."""

    # --- Twilio ---
    PUBLIC_BASE_URL: str = _setting(
        "",
        Spec(
            TWILIO,
            "The public https address Twilio reaches (scheme and host, no path). Webhook "
            "and stream signatures are checked against it, never against the host a proxy "
            "passes on.",
            required=True,
            schemes=("https://", "http://"),
            secure_unless_debug=True,
            origin_only=True,
        ),
    )
    TWILIO_AUTH_TOKEN: str = _setting(
        "",
        Spec(
            TWILIO,
            "Checks the signature of every webhook and media stream.",
            required=True,
            secret=True,
        ),
    )
    TWILIO_ACCOUNT_SID: str = _setting(
        "",
        Spec(
            TWILIO,
            "The account of the calls, for Twilio's REST API: the bridge hangs a call up "
            "through it when the stream alone cannot end it; empty: the account each "
            "call's webhook names.",
        ),
    )
    TWILIO_API_BASE_URL: str = _setting(
        "",
        Spec(
            TWILIO,
            "Base URL of Twilio's REST API; empty: Twilio's own. Stand-ins only.",
            schemes=("https://", "http://"),
            secure_unless_debug=True,
            clear_on_loopback=True,
        ),
    )
    STREAM_TOKEN_TTL_S: int = _setting(
        60,
        Spec(
            TWILIO,
            "Lifetime of the per-call token carried from the voice webhook to the media stream.",
            minimum=5,
            maximum=3600,
        ),
    )
    STREAM_START_TIMEOUT_S: float = _setting(
        5.0,
        Spec(
            TWILIO,
            "A media stream that has not sent its `start` this long after the handshake is closed.",
            minimum=0.1,
            maximum=60,
        ),
    )
    TWILIO_MEDIA_MESSAGE_MS: int = _setting(
        200,
        Spec(
            TWILIO,
            "The most AI audio one media message to Twilio carries.",
            minimum=20,
            maximum=1000,
            step=20,
        ),
    )

    # --- OpenAI Realtime ---
    OPENAI_API_KEY: str = _setting(
        "", Spec(OPENAI, "The key of the Realtime API.", required=True, secret=True)
    )
    OPENAI_WEBSOCKET_BASE_URL: str | None = _setting(
        None,
        Spec(
            OPENAI,
            "The Realtime endpoint (the SDK appends `/realtime`); unset: OpenAI's "
            "own. Stand-ins and proxies.",
            schemes=("wss://", "ws://"),
            secure_unless_debug=True,
            clear_on_loopback=True,
        ),
    )
    OPENAI_REALTIME_MODEL: str = _setting("gpt-realtime", Spec(OPENAI, "The Realtime model."))
    OPENAI_VOICE: str = _setting("marin", Spec(OPENAI, "The agent's voice."))
    OPENAI_VAD_THRESHOLD: float = _setting(
        0.5, Spec(OPENAI, "Server VAD's speech threshold.", minimum=0.0, maximum=1.0)
    )
    OPENAI_VAD_PREFIX_PADDING_MS: int = _setting(
        300,
        Spec(
            OPENAI,
            "Audio server VAD keeps before a speech start; the bridge dates the "
            "caller's first word with it.",
            minimum=0,
            maximum=2000,
        ),
    )
    OPENAI_VAD_SILENCE_DURATION_MS: int = _setting(
        500,
        Spec(OPENAI, "Silence that ends the caller's turn.", minimum=100, maximum=5000),
    )
    OPENAI_INPUT_TRANSCRIPTION_MODEL: str = _setting(
        "gpt-4o-mini-transcribe",
        Spec(
            OPENAI,
            "Transcribes the caller's words (kept with the call, and told to a "
            "replacement session); empty: no transcription.",
        ),
    )

    # --- The agent ---
    AGENT_INSTRUCTIONS: str = _setting(
        "You are a friendly phone assistant. Keep answers short. When the caller says "
        "goodbye or asks to end the call, say a brief goodbye and call end_call.",
        Spec(AGENT, "The agent's instructions."),
    )
    AGENT_GREETING: str = _setting(
        "Hello, thanks for calling. How can I help?",
        Spec(AGENT, "What the agent says first; empty: it waits for the caller."),
    )
    AGENT_HOOKS: str = _setting(
        "calls.agents.AgentHooks",
        Spec(
            AGENT,
            "Dotted path of the host's `calls.agents.AgentHooks` subclass: each call's "
            "agent, what a tool call's record keeps, the keypad.",
        ),
    )
    AGENT_HOOK_TIMEOUT_S: float = _setting(
        2.0,
        Spec(
            AGENT,
            "How long the voice webhook waits for the hooks' agent; past it the call "
            "gets the default agent.",
            minimum=0.05,
            maximum=10,
        ),
    )
    TOOL_TIMEOUT_S: float = _setting(
        10.0,
        Spec(
            AGENT,
            "How long a tool may run (unless it names its own); past it the model is "
            "told it timed out.",
            minimum=0.1,
            maximum=300,
        ),
    )
    TOOL_THREADS: int = _setting(
        8,
        Spec(
            AGENT,
            "Threads a process runs sync tools and hooks on (the ORM available); never "
            "the call path's own.",
            minimum=1,
            maximum=256,
        ),
    )
    TOOL_HOLD_AFTER_MS: int = _setting(
        700,
        Spec(
            AGENT,
            "While a tool runs, after this much silence the AI says a short holding "
            "line (again after each such silence, five at most); the model's time to "
            "its first audio comes on top.",
            minimum=200,
            maximum=10000,
        ),
    )
    TOOL_HOLD_INSTRUCTIONS: str = _setting(
        "In a few words, tell the caller you are still working on it. Do not answer "
        "yet and do not call any tool.",
        Spec(AGENT, "What the model is asked to say while a tool runs."),
    )
    KEYPAD_PAUSE_MS: int = _setting(
        1500,
        Spec(
            AGENT,
            "Keypad digits go to the model together once the caller pauses this long "
            "(or presses #).",
            minimum=100,
            maximum=10000,
        ),
    )
    TURN_INTERRUPT_AFTER_MS: int = _setting(
        550,
        Spec(
            AGENT,
            "The caller's voice this long while the AI speaks is an interruption, "
            "whatever they say; shorter sounds are judged by their words (a "
            "backchannel, noise, or an interruption). Per agent: `interrupt_after_ms`.",
            minimum=200,
            maximum=5000,
        ),
    )
    TURN_STOP_TARGET_MS: int = _setting(
        450,
        Spec(
            AGENT,
            "A caller who interrupts hears the AI no later than this after they began: "
            "while their sound is judged, the answer is held there (or paused in time "
            "for it), and resumed where they stopped hearing it if it was not an "
            "interruption.",
            minimum=150,
            maximum=2000,
        ),
    )
    TURN_VOICE_END_MS: int = _setting(
        20,
        Spec(
            AGENT,
            "A sound the caller makes while the AI speaks ends after this long without "
            "their voice: a held or paused answer resumes then, so every millisecond is "
            "one more of silence in it; a pause this long inside their words resumes it "
            "too (late in a sound, the caller may hear a little of it). No longer than "
            "the 200 ms within which voice back goes on with the same sound.",
            minimum=20,
            maximum=200,
            step=20,
        ),
    )
    CALL_APOLOGY: str = _setting(
        "Sorry, we are having technical difficulties. Please call again later. Goodbye.",
        Spec(AGENT, "What the caller hears when the call cannot go on (the model lost)."),
    )

    # --- Calls and processes ---
    UPLINK_CHUNK_MS: int = _setting(
        40,
        Spec(
            CALLS,
            "Caller audio goes to the model in appends of this many ms (Twilio's "
            "20 ms frames joined).",
            minimum=20,
            maximum=200,
            step=20,
        ),
    )
    MODEL_PREOPEN_S: float = _setting(
        10.0,
        Spec(
            CALLS,
            "The voice webhook opens the call's model session while Twilio connects "
            "the stream; one not taken this long is closed. 0: sessions open at the "
            "stream's `start` (set it with several workers behind one address).",
            minimum=0,
            maximum=60,
        ),
    )
    MAX_ACTIVE_CALLS: int = _setting(
        100,
        Spec(
            CALLS,
            "A process takes at most this many calls at once; the voice webhook turns "
            "the next away (`OVERFLOW_NUMBER`, else busy). 0: no limit. What one core "
            "carries: README, Capacity.",
            minimum=0,
        ),
    )
    ADMIT_MAX_LOOP_LAG_MS: int = _setting(
        100,
        Spec(
            CALLS,
            "A process whose event loop ran later than this through the last second (the "
            "median) takes no new call: the calls in flight keep their truth. 0: never "
            "refuse for it.",
            minimum=0,
            maximum=1000,
        ),
    )
    OVERFLOW_NUMBER: str = _setting(
        "",
        Spec(
            CALLS,
            "Where a call turned away is dialled (E.164, another line or a person); "
            "empty: it is rejected as busy.",
        ),
    )
    MODEL_PREOPEN_MAX: int = _setting(
        200, Spec(CALLS, "At most this many sessions opened ahead wait at once.", minimum=0)
    )
    MODEL_RESPONSE_TIMEOUT_MS: int = _setting(
        5000,
        Spec(
            CALLS,
            "A model that does not start a due answer, or stops producing one, this "
            "long is replaced by a new session (the conversation carried over).",
            minimum=500,
            maximum=60000,
        ),
    )
    MODEL_MAX_RECOVERIES: int = _setting(
        2,
        Spec(
            CALLS,
            "Replacement sessions per call; then the caller hears the apology and the call ends.",
            minimum=0,
            maximum=10,
        ),
    )
    MODEL_PING_INTERVAL_S: float = _setting(
        5.0, Spec(CALLS, "Keepalive pings on the model's socket.", minimum=0.1, maximum=60)
    )
    MODEL_PING_TIMEOUT_S: float = _setting(
        5.0,
        Spec(
            CALLS,
            "A ping unanswered this long closes (and replaces) the session.",
            minimum=0.1,
            maximum=60,
        ),
    )
    CALL_ALIVE_INTERVAL_S: float = _setting(
        5.0, Spec(CALLS, "Each process marks its calls alive this often.", minimum=0.1)
    )
    CALL_LOST_AFTER_S: float = _setting(
        30.0,
        Spec(
            CALLS,
            "A streaming call not marked alive this long lost its process and is "
            "ended (`server_lost`).",
            minimum=1,
        ),
    )
    CALL_HANDOVER_GRACE_S: float = _setting(
        5.0,
        Spec(
            CALLS,
            "On SIGTERM each call is handed over at its next pause, or after this "
            "long at the latest; 0: at once.",
            minimum=0,
            maximum=600,
        ),
    )

    # --- Playout ---
    PLAYOUT_FRAME_MS: int = _setting(
        20, Spec(PLAYOUT, "One frame of AI audio.", minimum=10, maximum=100, step=10)
    )
    PLAYOUT_LEAD_MS: int = _setting(
        260,
        Spec(
            PLAYOUT,
            "The most unplayed AI audio kept at Twilio (what a barge-in's clear drops there).",
            minimum=40,
            maximum=5000,
        ),
    )
    PLAYOUT_REFILL_MS: int = _setting(
        60,
        Spec(
            PLAYOUT,
            "Pacing tops the lead up this much at a time (one media message, one wake-up).",
            minimum=20,
            maximum=5000,
        ),
    )
    PLAYOUT_START_HOLD_MS: int = _setting(
        20,
        Spec(
            PLAYOUT,
            "An answer's first audio waits at most this long to gather "
            "PLAYOUT_START_FILL_MS before it is sent.",
            minimum=0,
            maximum=1000,
        ),
    )
    PLAYOUT_START_FILL_MS: int = _setting(
        100, Spec(PLAYOUT, "What an answer's first send holds.", minimum=0, maximum=5000)
    )
    PLAYOUT_MARK_INTERVAL_MS: int = _setting(
        200,
        Spec(
            PLAYOUT,
            "A mark (the evidence of what the caller heard) follows at least "
            "every this much audio sent, and each item's end.",
            minimum=20,
            maximum=5000,
        ),
    )
    PLAYOUT_GRACE_MS: int = _setting(
        40,
        Spec(
            PLAYOUT,
            "Margin past the caller's estimated end of playout (the measured link comes on top).",
            minimum=0,
            maximum=2000,
        ),
    )
    PLAYOUT_LINK_RTT_PRIOR_MS: int = _setting(
        100,
        Spec(
            PLAYOUT,
            "Round trip to Twilio's player assumed until a call has measured it.",
            minimum=0,
            maximum=2000,
        ),
    )
    PLAYOUT_LINK_JITTER_PRIOR_MS: int = _setting(
        20, Spec(PLAYOUT, "Its jitter, assumed likewise.", minimum=0, maximum=1000)
    )
    PLAYOUT_DRAIN_MARGIN_MS: int = _setting(
        400,
        Spec(
            PLAYOUT,
            "A hangup waits this long past the goodbye's estimated end for its "
            "final mark, then ends the call anyway.",
            minimum=0,
            maximum=10000,
        ),
    )

    # --- Review ---
    CALL_RETENTION_MIN_DAYS: int = _setting(
        30,
        Spec(
            REVIEW,
            "The admin's retention action never deletes a call that ended more recently.",
            minimum=1,
        ),
    )
    REVIEW_BASE_URL: str = _setting(
        "",
        Spec(
            REVIEW,
            "Where reviewers open the admin: `drain_diagnostics` prints its links "
            "against it (empty: paths).",
            schemes=("https://", "http://"),
        ),
    )


# --- validation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with `CALLBRIDGE`: a check id, what is wrong, and what to do."""

    id: str
    message: str
    hint: str

    def line(self) -> str:
        return f"{self.id}: {self.message} ({self.hint})"


def setting_fields() -> tuple[Field[Any], ...]:
    return fields(CallbridgeSettings)


def spec_of(item: Field[Any]) -> Spec:
    spec: Spec = item.metadata["spec"]
    return spec


@functools.cache
def _types() -> dict[str, Any]:
    return get_type_hints(CallbridgeSettings)


def _accepts(expected: Any, value: Any) -> bool:
    if isinstance(expected, types.UnionType):
        return any(_accepts(option, value) for option in expected.__args__)
    if expected is type(None):
        return value is None
    if isinstance(value, bool):
        return expected is bool
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


def _type_name(expected: Any) -> str:
    if isinstance(expected, types.UnionType):
        return " or ".join(_type_name(option) for option in expected.__args__)
    return "None" if expected is type(None) else str(expected.__name__)


def _value_problems(name: str, spec: Spec, value: Any, debug: bool) -> Iterator[Problem]:
    where = f"{NAMESPACE}[{name!r}]"
    if spec.required and (not value or (isinstance(value, str) and not value.strip())):
        yield Problem(MISSING_VALUE, f"{where} is not set", spec.doc)
        return
    if isinstance(value, float) and not math.isfinite(value):
        yield Problem(OUT_OF_RANGE, f"{where} is {value!r}", "a finite number")
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = spec.minimum, spec.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{'' if low is None else low} to {'' if high is None else high}".strip()
            yield Problem(OUT_OF_RANGE, f"{where} is {value!r}, out of range", f"{bounds}")
        elif spec.step and value % spec.step:
            yield Problem(OUT_OF_RANGE, f"{where} is {value!r}", f"a multiple of {spec.step}")
    if isinstance(value, str) and value and spec.schemes:
        yield from _address_problems(where, spec, value, debug)


def _address_problems(where: str, spec: Spec, value: str, debug: bool) -> Iterator[Problem]:
    parts = urlsplit(value)
    on_this_machine = parts.hostname in ("localhost", "127.0.0.1", "::1")
    strict = spec.secure_unless_debug and not debug
    strict = strict and not (spec.clear_on_loopback and on_this_machine)
    allowed = spec.schemes[:1] if strict else spec.schemes
    if not value.startswith(allowed) or not parts.hostname:
        yield Problem(
            OUT_OF_RANGE,
            f"{where} is {value!r}",
            f"an address with a host, starting {' or '.join(allowed)}"
            + (" (with DEBUG off)" if len(allowed) < len(spec.schemes) else ""),
        )
    elif spec.origin_only and (parts.path not in ("", "/") or parts.query or parts.fragment):
        yield Problem(
            OUT_OF_RANGE,
            f"{where} is {value!r}",
            "scheme and host only (no path): Twilio signs the whole URL it calls, "
            "and the platform's paths are added to this",
        )


def _contradictions(values: Mapping[str, Any]) -> Iterator[Problem]:
    def problem(message: str, hint: str) -> Problem:
        return Problem(CONTRADICTION, message, hint)

    if values["CALL_LOST_AFTER_S"] <= values["CALL_ALIVE_INTERVAL_S"]:
        yield problem(
            "CALL_LOST_AFTER_S is not longer than CALL_ALIVE_INTERVAL_S",
            "a live call would be taken for lost between two of its beats",
        )
    frame, lead = values["PLAYOUT_FRAME_MS"], values["PLAYOUT_LEAD_MS"]
    if not frame <= values["PLAYOUT_REFILL_MS"] <= lead:
        yield problem(
            "PLAYOUT_REFILL_MS is not between PLAYOUT_FRAME_MS and PLAYOUT_LEAD_MS",
            "pacing tops up at least a frame and never more than the lead",
        )
    if values["PLAYOUT_START_FILL_MS"] > lead:
        yield problem(
            "PLAYOUT_START_FILL_MS is more than PLAYOUT_LEAD_MS",
            "pacing never sends more than the lead at once",
        )
    if values["TWILIO_MEDIA_MESSAGE_MS"] % frame:
        yield problem(
            "TWILIO_MEDIA_MESSAGE_MS is not a whole number of PLAYOUT_FRAME_MS",
            "a media message carries whole frames",
        )


def problems(configured: object, debug: bool = False) -> list[Problem]:
    """Everything wrong with `configured` (the `CALLBRIDGE` setting), in key order.

    `debug` (Django's DEBUG) lets addresses be plain http, for a developer's machine.
    """
    if not isinstance(configured, Mapping):
        return [
            Problem(
                NOT_A_DICT,
                f"{NAMESPACE} is a {type(configured).__name__}, not a dict",
                f"{NAMESPACE} = {{'PUBLIC_BASE_URL': ..., 'TWILIO_AUTH_TOKEN': ..., "
                "'OPENAI_API_KEY': ...}",
            )
        ]
    known = {item.name: item for item in setting_fields()}
    found: list[Problem] = []
    for key in configured:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see the README's settings table"
            found.append(Problem(UNKNOWN_KEY, f"{NAMESPACE} has no setting {key!r}", hint))
    values: dict[str, Any] = {}
    hints = _types()
    for name, item in known.items():
        value = configured.get(name, item.default)
        values[name] = item.default
        if not _accepts(hints[name], value):
            found.append(
                Problem(
                    WRONG_TYPE,
                    f"{NAMESPACE}[{name!r}] is {type(value).__name__} {_shown(item, value)}",
                    f"expected {_type_name(hints[name])}",
                )
            )
            continue
        spec_problems = list(_value_problems(name, spec_of(item), value, debug))
        found += spec_problems
        if not spec_problems:
            values[name] = value
    if not any(problem.id in (WRONG_TYPE, OUT_OF_RANGE) for problem in found):
        found += _contradictions(values)
    return found


def _shown(item: Field[Any], value: Any) -> str:
    """A value as an error may show it: never a secret's."""
    return "(hidden)" if spec_of(item).secret else repr(value)


def load(configured: object, debug: bool = False) -> CallbridgeSettings:
    """The settings, validated; every problem named at once, or none."""
    found = problems(configured, debug)
    if found:
        from django.core.exceptions import ImproperlyConfigured

        lines = "\n".join(f"  - {problem.line()}" for problem in found)
        raise ImproperlyConfigured(f"the {NAMESPACE} setting is not usable:\n{lines}")
    assert isinstance(configured, Mapping)
    values = dict(configured)
    for name in ("PUBLIC_BASE_URL", "REVIEW_BASE_URL"):
        values[name] = values.get(name, "").rstrip("/")
    return CallbridgeSettings(**values)


@functools.cache
def callbridge_settings() -> CallbridgeSettings:
    """The platform's settings, read and validated once (again when a test changes them).

    Raises `ImproperlyConfigured` naming every problem: the platform fails
    closed where system checks did not run (the ASGI servers).
    """
    from django.conf import settings

    return load(getattr(settings, NAMESPACE, {}), debug=settings.DEBUG)


def forget(*, setting: str, **_: object) -> None:
    """Django's `setting_changed` receiver (`calls.apps`): read the settings again."""
    if setting in (NAMESPACE, "DEBUG"):
        callbridge_settings.cache_clear()


def from_strings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The `CALLBRIDGE` keys among `environ`'s, each parsed to its setting's type.

    For a host that configures from the environment (12-factor), as the
    reference host does: `CALLBRIDGE = from_strings(os.environ)`. A string
    that does not parse is kept as it is, so the check names it.
    """
    hints = _types()
    parsed: dict[str, Any] = {}
    for item in setting_fields():
        if item.name in environ:
            parsed[item.name] = _parse(hints[item.name], environ[item.name])
    return parsed


def _parse(expected: Any, text: str) -> Any:
    if isinstance(expected, types.UnionType):
        return None if text == "" else _parse(str, text)
    try:
        if expected is bool:
            return {"true": True, "1": True, "false": False, "0": False}[text.lower()]
        if expected is int:
            return int(text)
        if expected is float:
            return float(text)
    except (KeyError, ValueError):
        return text
    return text


# --- the README's table -----------------------------------------------------------------


def markdown_table() -> str:
    """The settings, grouped, as the README shows them (`python -m calls.conf`)."""
    hints = _types()
    lines: list[str] = []
    group = None
    for item in setting_fields():
        spec = spec_of(item)
        if spec.group != group:
            group = spec.group
            lines += ["", f"**{group}**", "", "| key | type | default | what it does |"]
            lines.append("|---|---|---|---|")
        default = "required" if spec.required else _default_shown(item.default)
        bounds = _bounds(spec)
        doc = spec.doc + (f" {bounds}." if bounds else "")
        lines.append(f"| `{item.name}` | {_type_name(hints[item.name])} | {default} | {doc} |")
    return "\n".join(lines).strip() + "\n"


def _default_shown(default: Any) -> str:
    if default == "" or default is None:
        return "empty"
    if isinstance(default, str) and len(default) > 24:
        return "a sentence"
    return f"`{default!r}`"


def _bounds(spec: Spec) -> str:
    parts = []
    if spec.minimum is not None and spec.maximum is not None:
        parts.append(f"{_number(spec.minimum)} to {_number(spec.maximum)}")
    elif spec.minimum is not None:
        parts.append(f"at least {_number(spec.minimum)}")
    if spec.step:
        parts.append(f"a multiple of {spec.step}")
    return ", ".join(parts).capitalize()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


BEGIN, END = "<!-- settings:begin -->\n", "<!-- settings:end -->"


def with_table(document: str) -> str:
    """`document` with the settings table between its markers replaced by the current one."""
    start, end = document.index(BEGIN) + len(BEGIN), document.index(END)
    return document[:start] + markdown_table() + document[end:]


if __name__ == "__main__":
    # `python -m calls.conf` prints the table; `python -m calls.conf README.md` writes it
    # between the file's markers (`make settings-table`).
    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        target.write_text(with_table(target.read_text()))
    else:
        sys.stdout.write(markdown_table())
