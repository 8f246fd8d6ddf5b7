"""The sent-audio axis: every byte sent, in order, and which item each stretch belongs to."""

from __future__ import annotations

from collections import deque

from playout.items import AxisRun, ItemAudio

# Runs kept for position -> item lookups; lookups only ever look near the end
# of the axis (what is playing now or just played), so old runs may go.
_RUN_HISTORY = 1024


class SentLedger:
    """A continuous byte axis of everything sent to Twilio since the tracker began.

    Positions are bytes of mu-law audio; the axis never restarts, so a mark's
    position is comparable across cancels. A pause rewinds it to the heard
    point, and the same audio is sent again at the same positions. Each item
    records the runs of the axis it occupies, so a heard position maps back
    to an item offset.
    """

    def __init__(self) -> None:
        self._runs: deque[AxisRun] = deque(maxlen=_RUN_HISTORY)
        self._sent = 0

    @property
    def sent_pos(self) -> int:
        """Axis position just after the last byte sent."""
        return self._sent

    def append(self, item: ItemAudio, size: int) -> None:
        """Record `size` bytes of `item` sent at the end of the axis."""
        last = self._runs[-1] if self._runs else None
        if last is not None and last.item is item and last.end == self._sent:
            last.end += size
        else:
            run = AxisRun(self._sent, self._sent + size, item)
            self._runs.append(run)
            item.runs.append(run)
        item.sent_bytes += size
        self._sent += size

    def item_at(self, pos: int) -> ItemAudio | None:
        """The item whose audio occupies axis byte `pos`, if known."""
        for run in reversed(self._runs):
            if run.start <= pos < run.end:
                return run.item
            if run.end <= pos:
                return None
        return None

    def rewind(self, pos: int) -> list[tuple[ItemAudio, int]]:
        """Take back everything sent beyond `pos` (a pause): the axis goes on from `pos`.

        Returns the (item, bytes) taken, in axis order. The same audio, sent
        again, lies at the same positions, so what a position means never
        changes; marks past `pos` must be cleared first.
        """
        taken: list[tuple[ItemAudio, int]] = []
        runs = self._runs
        while runs and runs[-1].end > pos:
            run = runs[-1]
            cut_to = max(run.start, pos)
            taken.append((run.item, run.end - cut_to))
            run.item.sent_bytes -= run.end - cut_to
            if cut_to > run.start:
                run.end = cut_to
                break
            runs.pop()
            run.item.runs.pop()  # an item's runs are in axis order: this is its last
        self._sent = min(self._sent, pos)
        taken.reverse()
        return taken

    def drop_after(self, pos: int) -> None:
        """Forget that anything beyond `pos` was sent: Twilio's clear threw it away.

        Runs are cut so items only claim audio the caller heard; the axis
        itself keeps its length, so later audio lies beyond the dropped gap.
        """
        for run in reversed(self._runs):
            if run.end <= pos:
                break
            cut_to = max(run.start, pos)
            run.item.sent_bytes -= run.end - cut_to
            run.end = cut_to
