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
    position is comparable across cancels. Each item records the runs of the
    axis it occupies, so a heard position maps back to an item offset.
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
