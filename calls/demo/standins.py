"""The settings a host's server needs under the stand-ins' stack (`simulators.stack`).

`manage.py simulate_call` serves the host in a child process and tells it,
in one environment variable, where the stand-ins listen and what the
scenarios set (the Realtime stand-in's address, the simulated Twilio
account's token, the greeting...). A host's test settings take them over
its own `CALLBRIDGE`:

    from calls.demo.standins import stand_in_settings

    CALLBRIDGE = {**CALLBRIDGE, **stand_in_settings()}

Outside the stack nothing is set and this is empty, so the same settings
module also runs `simulate_call` itself. Only `CALLBRIDGE`'s keys are taken,
each parsed to its type.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from calls.conf import from_strings
from simulators.stack import STAND_INS_VARIABLE


def stand_in_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`CALLBRIDGE` values the stand-ins' stack chose for this process (empty outside it)."""
    source = os.environ if environ is None else environ
    chosen = json.loads(source.get(STAND_INS_VARIABLE) or "{}")
    return from_strings({str(key): str(value) for key, value in chosen.items()})
