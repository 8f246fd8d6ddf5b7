"""Settings come from the environment, with safe production requirements."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_"))
    }
    code = (
        "import django, json; from django.conf import settings; django.setup();"
        "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'],"
        " 'layer': settings.CHANNEL_LAYERS['default']['BACKEND'],"
        " 'hosts': settings.CHANNEL_LAYERS['default'].get('CONFIG', {}).get('hosts'),"
        " 'first_app': settings.INSTALLED_APPS[0]}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_embedded_defaults_are_sqlite_and_in_memory_layer() -> None:
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert '"engine": "django.db.backends.sqlite3"' in result.stdout
    assert '"layer": "channels.layers.InMemoryChannelLayer"' in result.stdout
    assert '"first_app": "daphne"' in result.stdout


def test_database_and_redis_urls_switch_backends() -> None:
    result = load_settings(
        DATABASE_URL="postgres://u@127.0.0.1:5432/db", REDIS_URL="redis://127.0.0.1:6379/0"
    )
    assert result.returncode == 0, result.stderr
    assert "postgresql" in result.stdout
    assert '"layer": "channels_redis.core.RedisChannelLayer"' in result.stdout
    assert '"hosts": ["redis://127.0.0.1:6379/0"]' in result.stdout


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"DJANGO_DEBUG": "false", "TWILIO_AUTH_TOKEN": "t"}, "DJANGO_SECRET_KEY"),
        (
            {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "s" * 50, "TWILIO_AUTH_TOKEN": ""},
            "TWILIO_AUTH_TOKEN",
        ),
    ],
)
def test_production_refuses_to_start_without_secrets(env: dict[str, str], missing: str) -> None:
    result = load_settings(**env)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr
