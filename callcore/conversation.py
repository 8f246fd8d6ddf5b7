"""The conversation so far, as text: what seeds a replacement Realtime session.

A session that went quiet or away cannot be asked for its memory, so the
bridge keeps its own: the caller's turns (the service's transcription of
their audio) and the AI's (what the caller heard of each answer, in words).
Turns are in the order they began: a caller's item when their speech
started, an answer's when its first audio arrived. Transcriptions come
later than that, so a turn is placed first and filled in when its words come.
"""

from __future__ import annotations

from dataclasses import dataclass

# The most turns a replacement session is seeded with (the latest ones): enough
# for the thread of a phone call, bounded so a long call's seed stays small.
MAX_SEED_TURNS = 40


@dataclass(slots=True)
class Turn:
    seq: int
    role: str  # "user" or "assistant"
    item_id: str
    text: str = ""


class Conversation:
    def __init__(self) -> None:
        self._turns: dict[str, Turn] = {}

    def preload(self, turns: list[Turn]) -> None:
        """The conversation before this stream (a handed-over call): already recorded."""
        for turn in turns:
            self._turns[turn.item_id] = Turn(
                len(self._turns) + 1, turn.role, turn.item_id, turn.text
            )

    def begin(self, item_id: str, role: str) -> None:
        """A turn exists from now on (its words may come later)."""
        if item_id and item_id not in self._turns:
            self._turns[item_id] = Turn(len(self._turns) + 1, role, item_id)

    def words(self, item_id: str, role: str, text: str) -> Turn | None:
        """The words of a turn (replacing any earlier ones); the turn, if it changed."""
        self.begin(item_id, role)
        turn = self._turns.get(item_id)
        text = text.strip()
        if turn is None or turn.text == text:
            return None
        turn.text = text
        return turn

    def forget(self, item_id: str) -> None:
        """An answer the caller never heard any of: not part of the conversation."""
        self._turns.pop(item_id, None)

    def unsettled(self, role: str) -> list[Turn]:
        """Turns of `role` that have no words yet."""
        return [turn for turn in self._turns.values() if turn.role == role and not turn.text]

    def seed(self) -> list[Turn]:
        """The turns with words, oldest first, at most `MAX_SEED_TURNS` of the latest."""
        spoken = [turn for turn in self._turns.values() if turn.text]
        return sorted(spoken, key=lambda turn: turn.seq)[-MAX_SEED_TURNS:]
