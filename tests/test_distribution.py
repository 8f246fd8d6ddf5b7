"""What the distribution promises beyond the app: the pure packages stay pure."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["playout", "callcore"])
def test_the_pure_packages_import_without_django_or_asyncio(package: str) -> None:
    """Every module of `playout` and `callcore`, in a fresh interpreter, loads neither
    Django nor Channels nor asyncio: a host can run the decisions anywhere."""
    modules = [package] + [
        info.name for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")
    ]
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'channels', 'asyncio', 'calls', 'simulators')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert f"{package}.config" in modules or f"{package}.protocol.twilio" in modules
    assert loaded == "[]"
