"""Host functions the AI may call: registered with `@tool`, described to the model by signature.

    from calls.tools import CallContext, ToolError, tool

    @tool
    def order_status(order_number: str, call: CallContext) -> dict[str, str]:
        \"\"\"The status of one of the caller's orders.\"\"\"
        order = Order.objects.filter(number=order_number, phone=call.from_number).first()
        if order is None:
            raise ToolError("no order with that number for this phone")
        return {"status": order.status}

A tool is sync or async. A sync one runs on a thread of the tools' pool with
the Django ORM available (the threads keep their connections; one is closed
when a tool raises or leaves a transaction open); an async one runs on the
event loop and must not block it.
Each has a timeout (`timeout_s`, else `CALLBRIDGE["TOOL_TIMEOUT_S"]`). The
JSON schema the model sees comes from the signature (str, int, float, bool,
`Literal`, enums, lists, `X | None`, defaults; `Annotated[str, "words"]`
describes a parameter) and the docstring, or is given as `parameters`. The
arguments the model writes are checked against that schema before the
function runs. A parameter annotated `CallContext` is not the model's: it
receives the call's context.

What a tool returns goes to the model as JSON (a `str` as it is). A
`ToolError`'s message goes to the model as the tool's error, for it to tell
the caller; any other exception is logged and the model is told the tool
failed, without its details. Neither ends the call. Agents name the tools
they may use (`calls.agents.Agent.tools`).
"""

from __future__ import annotations

import enum
import inspect
import json
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

__all__ = [
    "CallContext",
    "Tool",
    "ToolError",
    "invalid_arguments",
    "registered_tools",
    "tool",
]

# The names the platform's own tools use (`callcore.protocol.realtime`): not a host's.
RESERVED_NAMES = frozenset({"end_call", "transfer_call"})


class ToolError(Exception):
    """Raised by a tool: its message goes to the model as the tool's error (keep it speakable)."""


@dataclass(frozen=True, slots=True)
class CallContext:
    """The call a tool runs for (a parameter annotated with it receives this)."""

    call_sid: str
    from_number: str
    to_number: str
    agent_name: str


@dataclass(frozen=True, slots=True)
class Tool:
    """A registered tool: its name and description as the model sees them, its JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    is_async: bool
    timeout_s: float | None
    # The parameter that receives the `CallContext`, if any.
    context_parameter: str | None
    # Parameters whose values the function takes as another type than JSON's (an
    # enum's members, a tuple or set): the type to make of them.
    converters: dict[str, Callable[[Any], Any]] = field(default_factory=dict)

    def arguments(self, values: dict[str, Any]) -> dict[str, Any]:
        """The function's keyword arguments from the model's (checked) values."""
        made = dict(values)
        for name, convert in self.converters.items():
            if made.get(name) is not None:
                made[name] = convert(made[name])
        return made

    def definition(self) -> dict[str, Any]:
        """The tool as `session.update`'s `tools` list takes it."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


_registry: dict[str, Tool] = {}


def registered_tools() -> Mapping[str, Tool]:
    """Every tool registered in this process, by name."""
    return types.MappingProxyType(_registry)


def tool(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
) -> Any:
    """Register `function` as a tool (`@tool`, or `@tool(name=..., timeout_s=...)`).

    Registering a second function under a name replaces the first (a module
    reloaded in development); a name of the platform's own tools is refused.
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        tool_name = name or func.__name__
        if tool_name in RESERVED_NAMES:
            raise ValueError(f"{tool_name!r} is the platform's own tool; choose another name")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        context = _context_parameter(func)
        schema = dict(parameters) if parameters is not None else schema_of(func, context)
        words = description if description is not None else _summary(func)
        _registry[tool_name] = Tool(
            name=tool_name,
            description=words,
            parameters=schema,
            function=func,
            is_async=inspect.iscoroutinefunction(func),
            timeout_s=timeout_s,
            context_parameter=context,
            converters=_converters(func) if parameters is None else {},
        )
        return func

    return register(function) if function is not None else register


# --- the schema from the signature ------------------------------------------------------------


def schema_of(func: Callable[..., Any], skip: str | None = None) -> dict[str, Any]:
    """The JSON schema of `func`'s parameters (all but `skip`), for the model."""
    hints = get_type_hints(func, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in inspect.signature(func).parameters.values():
        if parameter.name == skip or parameter.name in ("self", "cls"):
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"{func.__name__}: *args and **kwargs cannot be described to a model")
        hint = hints.get(parameter.name, str)
        schema, optional = _type_schema(hint, f"{func.__name__}({parameter.name})")
        properties[parameter.name] = schema
        if parameter.default is inspect.Parameter.empty and not optional:
            required.append(parameter.name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(hint: Any, where: str) -> tuple[dict[str, Any], bool]:
    """A type's schema, and whether None is allowed (an optional parameter)."""
    origin = get_origin(hint)
    if origin is Annotated:
        inner, *extras = get_args(hint)
        schema, optional = _type_schema(inner, where)
        words = [extra for extra in extras if isinstance(extra, str)]
        if words:
            schema = {**schema, "description": " ".join(words)}
        return schema, optional
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(members) == 1:
            schema = _type_schema(members[0], where)[0]
            # The model may write null for it, meaning "not given".
            return {**schema, "type": [schema["type"], "null"]}, True
        raise TypeError(f"{where}: a union other than `X | None` cannot be described")
    if origin is Literal:
        values = list(get_args(hint))
        kinds = {type(value) for value in values}
        if len(kinds) != 1 or next(iter(kinds)) not in _SCALARS:
            raise TypeError(f"{where}: Literal values must be of one scalar type")
        return {"type": _SCALARS[next(iter(kinds))], "enum": values}, False
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        args = get_args(hint)
        items = _type_schema(args[0], where)[0] if args and args[0] is not Ellipsis else {}
        return {"type": "array", "items": items} if items else {"type": "array"}, False
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [member.value for member in hint]
        return _type_schema(Literal[tuple(values)], where)[0], False
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}, False
    if origin is dict or hint is dict:
        return {"type": "object"}, False
    raise TypeError(f"{where}: {hint!r} cannot be described to a model; give `parameters`")


def _converters(func: Callable[..., Any]) -> dict[str, Callable[[Any], Any]]:
    made: dict[str, Callable[[Any], Any]] = {}
    for name, hint in get_type_hints(func).items():
        members = [arg for arg in get_args(hint) if arg is not type(None)]
        base = members[0] if get_origin(hint) in (Union, types.UnionType) and members else hint
        origin = get_origin(base) or base
        if isinstance(base, type) and issubclass(base, enum.Enum):
            made[name] = base
        elif origin in (tuple, set, frozenset):
            made[name] = origin
    return made


def _context_parameter(func: Callable[..., Any]) -> str | None:
    hints = get_type_hints(func)
    for parameter in inspect.signature(func).parameters:
        if hints.get(parameter) is CallContext:
            return parameter
    return None


def _summary(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


# --- checking what the model wrote -------------------------------------------------------------


def parse_arguments(text: str) -> dict[str, Any] | str:
    """The model's arguments (JSON text) as a dict, or what is wrong with them."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return "the arguments are not JSON"
    if not isinstance(value, dict):
        return "the arguments are not a JSON object"
    return value


def invalid_arguments(
    schema: Mapping[str, Any], value: Any, where: str = "arguments"
) -> str | None:
    """What is wrong with `value` for `schema` (the subset of JSON schema `schema_of`
    writes: type, properties, required, additionalProperties, enum, items); None if nothing."""
    expected = schema.get("type")
    if expected is not None and not _is_type(value, expected):
        return f"{where} must be of type {expected}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} must be one of {', '.join(map(str, schema['enum']))}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                return f"{where}: {key} is missing"
        for key, item in value.items():
            if key in properties:
                problem = invalid_arguments(properties[key], item, key)
                if problem:
                    return problem
            elif schema.get("additionalProperties") is False:
                return f"{where}: {key} is not a parameter"
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            problem = invalid_arguments(schema["items"], item, f"{where}[{index}]")
            if problem:
                return problem
    return None


def _is_type(value: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return any(_is_type(value, one) for one in expected)
    if expected == "null":
        return value is None
    if value is None:
        return False
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    check = checks.get(str(expected))
    return check(value) if check is not None else True
