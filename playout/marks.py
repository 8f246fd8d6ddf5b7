"""Twilio marks: naming them, what each follows, and judging their echoes."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from playout.reports import EchoResult

_PREFIX = "po"
_NAME = re.compile(rf"{_PREFIX}-g(\d+)-(\d+)")
# Names returned by a `clear` are remembered this long (in names), so their
# echoes, which arrive at once, are recognised; older ones read as stale.
_CLEARED_HISTORY = 4096


@dataclass(frozen=True, slots=True)
class PlacedMark:
    """A mark sent to Twilio, following axis position `pos` (bytes)."""

    name: str
    generation: int
    pos: int
    sent_at: float
    # When the estimate, at send time, said the audio before the mark would finish.
    expected_at: float
    response_id: str
    item_id: str
    # The first mark after the player ran dry: its echo measures the link.
    clean: bool = False


class MarkBook:
    """Outstanding marks in axis order, and the names a clear turned into non-evidence."""

    def __init__(self) -> None:
        self._seq = 0
        self._outstanding: deque[PlacedMark] = deque()
        self._names: set[str] = set()
        self._cleared: dict[str, EchoResult] = {}

    @property
    def outstanding(self) -> int:
        """Marks sent and not yet echoed (since the last clear: a cancel or pause)."""
        return len(self._outstanding)

    def newest(self) -> PlacedMark | None:
        """The last mark placed and not yet echoed (nor cleared)."""
        return self._outstanding[-1] if self._outstanding else None

    def place(
        self,
        generation: int,
        pos: int,
        now: float,
        expected_at: float,
        response_id: str,
        item_id: str,
        clean: bool = False,
    ) -> PlacedMark:
        """Name and remember a new mark following axis position `pos`."""
        self._seq += 1
        name = f"{_PREFIX}-g{generation}-{self._seq}"
        mark = PlacedMark(name, generation, pos, now, expected_at, response_id, item_id, clean)
        self._outstanding.append(mark)
        self._names.add(name)
        return mark

    def echo(self, name: str, generation: int) -> tuple[EchoResult, PlacedMark | None]:
        """Judge an echo of `name` when `generation` is live.

        Twilio echoes in order, so an accepted echo also settles every earlier
        outstanding mark (their own echoes, if they come, read as unknown).
        """
        if name in self._names:
            while self._outstanding:
                mark = self._outstanding.popleft()
                self._names.discard(mark.name)
                if mark.name == name:
                    return EchoResult.ACCEPTED, mark
            raise AssertionError("outstanding mark index out of step")  # pragma: no cover
        cleared = self._cleared.pop(name, None)
        if cleared is not None:
            return cleared, None
        parsed = _NAME.fullmatch(name)
        if parsed is not None and int(parsed.group(1)) < generation:
            return EchoResult.STALE_GENERATION, None
        return EchoResult.UNKNOWN, None

    def clear(self, result: EchoResult = EchoResult.CLEARED_BY_CANCEL) -> int:
        """A clear: every outstanding mark's echo will come back unplayed, judged `result`.

        Returns their count.
        """
        count = len(self._outstanding)
        for mark in self._outstanding:
            self._cleared[mark.name] = result
        self._outstanding.clear()
        self._names.clear()
        while len(self._cleared) > _CLEARED_HISTORY:
            del self._cleared[next(iter(self._cleared))]
        return count
