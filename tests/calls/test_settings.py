"""Settings: production by default and fail closed; development values only when asked for.

Each case loads the settings in a fresh interpreter with a clean environment
(no DJANGO_*, DATABASE_*, REDIS_*, OPENAI_*, TWILIO_*, PUBLIC_* variables
inherited), as a deployment would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.callbridge import configure

ROOT = Path(__file__).resolve().parents[2]

#: The production environment as README.md documents it (values invented here).
PRODUCTION = {
    "DJANGO_SECRET_KEY": "q8Zr3LwN5xV0cT7yB1mK4sJ9hG2fD6aP-eU_oI8uY3tR5wQ1zX7cV9bN2mL4kJ6h",
    "PUBLIC_BASE_URL": "https://calls.example.com",
    "TWILIO_AUTH_TOKEN": "3f1c9a7b5d2e4f6a8b0c1d3e5f7a9b2c",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "OPENAI_API_KEY": "sk-live-placeholder-for-the-settings-test",
    "DATABASE_URL": "postgres://callbridge@db.internal:5432/callbridge",
    "REDIS_URL": "redis://redis.internal:6379/0",
}

_INHERITED = ("DJANGO_", "DATABASE_", "REDIS_", "OPENAI_", "TWILIO_", "PUBLIC_", "AGENT_")

_PRINT_SETTINGS = (
    "import django, json; from django.conf import settings; django.setup();"
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'],"
    " 'layer': settings.CHANNEL_LAYERS['default']['BACKEND'],"
    " 'hosts': settings.CHANNEL_LAYERS['default'].get('CONFIG', {}).get('hosts'),"
    " 'first_app': settings.INSTALLED_APPS[0], 'debug': settings.DEBUG,"
    " 'allowed_hosts': settings.ALLOWED_HOSTS, 'hsts': settings.SECURE_HSTS_SECONDS,"
    " 'ssl_redirect': settings.SECURE_SSL_REDIRECT}))"
)


def run(
    args: list[str], settings_module: str | None, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED)}
    if settings_module is not None:
        base["DJANGO_SETTINGS_MODULE"] = settings_module
    return subprocess.run(
        [sys.executable, *args],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def load(settings_module: str | None = "config.settings", **env: str) -> dict[str, Any]:
    result = run(["-c", _PRINT_SETTINGS], settings_module, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def refusal(settings_module: str | None = "config.settings", **env: str) -> list[str]:
    """The lines of the refusal to start (fails the test if the settings loaded)."""
    result = run(["-c", _PRINT_SETTINGS], settings_module, **env)
    assert result.returncode != 0, result.stdout
    assert "refusing to start in production" in result.stderr
    return [line.strip()[2:] for line in result.stderr.splitlines() if line.startswith("  - ")]


def test_development_is_sqlite_the_in_memory_layer_and_debug() -> None:
    loaded = load("config.dev_settings")
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["layer"] == "channels.layers.InMemoryChannelLayer"
    assert loaded["first_app"] == "daphne"
    assert loaded["debug"] is True


def test_database_and_redis_urls_switch_backends() -> None:
    loaded = load(
        "config.dev_settings",
        DATABASE_URL="postgres://u@127.0.0.1:5432/db",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert "postgresql" in loaded["engine"]
    assert loaded["layer"] == "channels_redis.core.RedisChannelLayer"
    assert loaded["hosts"] == ["redis://127.0.0.1:6379/0"]


def test_nothing_set_is_production_and_names_every_missing_value() -> None:
    refused = refusal("config.settings")
    assert refused[0] == "DJANGO_SECRET_KEY is not set"
    # The platform's own check names its missing values, by check id.
    assert [line.split(" (")[0] for line in refused[1:]] == [
        "callbridge.E005: CALLBRIDGE['PUBLIC_BASE_URL'] is not set",
        "callbridge.E005: CALLBRIDGE['TWILIO_AUTH_TOKEN'] is not set",
        "callbridge.E005: CALLBRIDGE['OPENAI_API_KEY'] is not set",
    ]


def test_manage_py_without_settings_refuses_too() -> None:
    result = run(["manage.py", "check"], None)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        (
            {"DJANGO_SECRET_KEY": "insecure-development-key-never-use-in-production"},
            "DJANGO_SECRET_KEY is the development key published in the repository",
        ),
        (
            {"DJANGO_SECRET_KEY": "short"},
            "DJANGO_SECRET_KEY is too weak: at least 50 characters, 5 different",
        ),
        (
            {"TWILIO_AUTH_TOKEN": "dev-auth-token"},
            "TWILIO_AUTH_TOKEN is the development token published in the repository",
        ),
        (
            {"PUBLIC_BASE_URL": "http://calls.example.com"},
            "callbridge.E004: CALLBRIDGE['PUBLIC_BASE_URL'] is 'http://calls.example.com' "
            "(an address with a host, starting https:// (with DEBUG off))",
        ),
    ],
)
def test_production_refuses_development_and_unsafe_values(
    override: dict[str, str], problem: str
) -> None:
    assert refusal(**{**PRODUCTION, **override}) == [problem]


def test_the_documented_production_environment_starts_safe() -> None:
    loaded = load(**PRODUCTION)
    assert loaded["debug"] is False
    assert loaded["allowed_hosts"] == ["calls.example.com"]
    assert loaded["hsts"] == 31536000
    assert loaded["ssl_redirect"] is True


def test_check_deploy_is_clean_with_the_documented_production_environment() -> None:
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], None, **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_values_are_refused_even_with_debug_asked_for() -> None:
    """DJANGO_DEBUG=true does not make the development values acceptable."""
    assert "DJANGO_SECRET_KEY is not set" in refusal(DJANGO_DEBUG="true")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 10.0),
        ({"SERVE_WORKERS": "1"}, 10.0),
        # `make serve` with several workers: a stream rarely reaches the one that opened it.
        ({"SERVE_WORKERS": "4"}, 0.0),
        ({"SERVE_WORKERS": "4", "MODEL_PREOPEN_S": "8"}, 8.0),
    ],
)
def test_sessions_are_opened_ahead_by_default_only_for_one_worker(
    env: dict[str, str], expected: float
) -> None:
    script = (
        "import django; django.setup(); from calls.conf import callbridge_settings;"
        "print(callbridge_settings().MODEL_PREOPEN_S)"
    )
    result = run(["-c", script], "config.settings", **PRODUCTION, **env)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip()) == expected


def test_the_pacing_settings_reach_each_call(settings: Any) -> None:
    from calls.live.config import BridgeConfig

    configure(
        settings,
        PLAYOUT_LEAD_MS=500,
        PLAYOUT_REFILL_MS=140,
        PLAYOUT_MARK_INTERVAL_MS=120,
        TWILIO_MEDIA_MESSAGE_MS=60,
    )

    bridge = BridgeConfig.from_django()

    playout = bridge.playout
    assert (playout.lead_ms, playout.refill_ms, playout.mark_interval_ms) == (500, 140, 120)
    assert bridge.media_message_ms == 60


def test_the_turn_settings_reach_each_call(settings: Any) -> None:
    from calls.live.config import BridgeConfig

    configure(settings, TURN_INTERRUPT_AFTER_MS=700, TURN_STOP_TARGET_MS=500, TURN_VOICE_END_MS=60)

    turns = BridgeConfig.from_django().turns

    assert (turns.interrupt_after_ms, turns.stop_target_ms, turns.voice_end_ms) == (700, 500, 60)


_PRINT_STARTUP = (
    "import gc, json, sys; import config.asgi; from calls.live.realtime import _client;"
    "young = {id(o) for o in gc.get_objects()};"
    "realtime = sys.modules.get('openai.resources.realtime');"
    "print(json.dumps({'loaded': realtime is not None,"
    " 'frozen': realtime is not None and id(vars(realtime)) not in young,"
    " 'clients': _client.cache_info().currsize}))"
)


@pytest.mark.parametrize(
    ("settings_module", "env"),
    [("config.dev_settings", {}), ("config.settings", PRODUCTION)],
    ids=["development", "production"],
)
def test_the_server_loads_what_calls_use_before_it_freezes_the_heap(
    settings_module: str, env: dict[str, str]
) -> None:
    # The SDK would import its Realtime modules (and the client build its TLS
    # context) at the first call, on the event loop: 100 ms that every call then
    # in progress waits for, and objects the collector walks at every full pass.
    result = run(["-c", _PRINT_STARTUP], settings_module, **env)
    assert result.returncode == 0, result.stderr
    startup = json.loads(result.stdout)

    assert startup["loaded"]
    assert startup["frozen"]
    assert startup["clients"] == 1
