"""The caller's keypad: DTMF digits gathered into one input for the model.

A caller typing an order number presses several keys; each is not a turn
of its own. Digits are gathered until `#` (which ends an entry and is not
part of it) or a pause of `pause_ms`, then given to the model as the
caller's words, and it is asked to answer.
"""

from __future__ import annotations

END_OF_ENTRY = "#"


class Keypad:
    def __init__(self, pause_ms: int) -> None:
        self.pause_ms = pause_ms
        self._digits: list[str] = []
        self._last_at = 0.0

    def pressed(self, digit: str, now: float) -> str | None:
        """A key: the entry it completes (`#`), or None while it goes on."""
        if digit == END_OF_ENTRY:
            return self._take() or None
        self._digits.append(digit)
        self._last_at = now
        return None

    @property
    def due(self) -> float | None:
        """When the entry under way ends by the pause (monotonic s)."""
        return self._last_at + self.pause_ms / 1000 if self._digits else None

    def paused(self, now: float) -> str | None:
        """The entry the caller's pause completed, if it did by `now`."""
        due = self.due
        if due is None or now < due:
            return None
        return self._take()

    def _take(self) -> str:
        digits, self._digits = "".join(self._digits), []
        return digits


def keypad_words(digits: str) -> str:
    """The entry as the model is told it (a text turn of the caller's)."""
    return f"[The caller typed on the phone keypad: {digits}]"
