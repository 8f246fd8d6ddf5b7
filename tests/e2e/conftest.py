"""End to end: the stand-ins (the simulated callers, Twilio and the Realtime service) run
in this test process, on its event loop, and keep the wire's timing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.stack import frozen_heap


@pytest.fixture(autouse=True)
def _no_long_collections_under_the_stand_ins() -> Iterator[None]:
    """What the process holds as a test begins (Django, the SDKs, what earlier modules
    left) is frozen out of the garbage collector's reach while it runs: a full
    collection over it stalled every simulated caller for over 100 ms (`frozen_heap`)."""
    with frozen_heap():
        yield
