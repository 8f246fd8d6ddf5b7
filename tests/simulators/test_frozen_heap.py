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
        assert gc.get_freeze_count() > 10_000  # Django, the SDKs, pytest (or more: mypy
        # run in-process by a test before this one leaves its own frozen)
    assert gc.get_freeze_count() == 0


def _collectable(thing: object) -> bool:
    """Whether `thing` is in the collector's reach (in a generation, not frozen)."""
    return any(o is thing for generation in range(3) for o in gc.get_objects(generation))


def test_nested_the_outermost_freezes_and_unfreezes() -> None:
    with frozen_heap():
        made = _Node()
        assert _collectable(made)
        with frozen_heap():  # a simulate_call scenario inside an end-to-end test
            assert _collectable(made)  # not frozen by the inner one
        assert gc.get_freeze_count() > 10_000  # still frozen for the rest of the test
    assert gc.get_freeze_count() == 0
    assert _collectable(made)


def test_an_error_inside_unfreezes_too() -> None:
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("a scenario failed")
    assert gc.get_freeze_count() == 0
