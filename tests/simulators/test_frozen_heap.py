"""`frozen_heap`: what the process holds is out of the garbage collector's reach while
the stand-ins keep the wire's timing, and back in it after."""

from __future__ import annotations

import gc
import weakref

import pytest

from simulators.stack import frozen_heap


class _Node:
    other: _Node | None = None


def test_what_is_held_on_entry_is_frozen_until_the_exit_and_garbage_is_not() -> None:
    cycle = _Node()
    cycle.other = cycle  # garbage only a collection frees
    gone = weakref.ref(cycle)
    del cycle
    with frozen_heap():
        assert gone() is None  # collected on entry, not frozen with the rest
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # Django, the SDKs, pytest (or more: mypy run in-process
        # by a test before this one leaves its own frozen)
        made = [_Node() for _ in range(100)]
        assert gc.get_freeze_count() == frozen  # what is made meanwhile is collected
        assert made
    assert gc.get_freeze_count() == 0


def test_an_error_inside_unfreezes_too() -> None:
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("a scenario failed")
    assert gc.get_freeze_count() == 0
