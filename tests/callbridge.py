"""Changing the platform's settings in a test: `configure(settings, KEY=value, ...)`.

`settings` is pytest-django's fixture: the whole `CALLBRIDGE` dict is replaced
(and restored after the test), which tells `calls.conf` to read it again.
"""

from __future__ import annotations

from typing import Any


def configure(settings: Any, **values: Any) -> None:
    settings.CALLBRIDGE = {**settings.CALLBRIDGE, **values}
