"""System checks of the platform's settings (`manage.py check`, `migrate`, `runserver`).

The ids are stable (`calls.conf`): a host silences one with
`SILENCED_SYSTEM_CHECKS`. The ASGI servers run no checks; the same
validation fails closed when the platform first reads its settings.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.urls import NoReverseMatch, reverse

from calls import conf
from calls.agents import load_hooks


@register(Tags.compatibility)
def check_callbridge_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    configured = getattr(settings, conf.NAMESPACE, None)
    if configured is None:
        return [
            Error(
                f"the {conf.NAMESPACE} setting is missing",
                hint=f"{conf.NAMESPACE} = {{'PUBLIC_BASE_URL': ..., 'TWILIO_AUTH_TOKEN': ..., "
                "'OPENAI_API_KEY': ...} (README: Add to an existing project)",
                id=conf.MISSING_VALUE,
            )
        ]
    return [
        Error(problem.message, hint=problem.hint, id=problem.id)
        for problem in conf.problems(configured, debug=settings.DEBUG)
    ]


@register(Tags.urls)
def check_webhooks_routed(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        reverse("calls:voice-webhook")
    except NoReverseMatch:
        return [
            Error(
                "Twilio's webhooks are not routed",
                hint="add path('', include('calls.urls')) to the URLconf",
                id=conf.WEBHOOKS_NOT_ROUTED,
            )
        ]
    return []


@register(Tags.compatibility)
def check_agent_hooks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    configured = getattr(settings, conf.NAMESPACE, None)
    if not isinstance(configured, dict):
        return []  # check_callbridge_settings says so
    default = next(item.default for item in conf.setting_fields() if item.name == "AGENT_HOOKS")
    path = configured.get("AGENT_HOOKS", default)
    if not isinstance(path, str):
        return []  # a wrong type, said by check_callbridge_settings
    try:
        load_hooks(path)
    except Exception as exc:
        return [
            Error(
                f"AGENT_HOOKS {path!r} cannot be used: {exc}",
                hint="a dotted path to a subclass of calls.agents.AgentHooks, importable "
                "and built with no arguments",
                id=conf.HOOKS_UNUSABLE,
            )
        ]
    return []
