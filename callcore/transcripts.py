"""What the model said in each answer, in words, placed against its audio."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _ItemWords:
    # (audio ms of the item received when the words arrived, the words)
    pieces: list[tuple[int, str]] = field(default_factory=list)
    final: str | None = None

    @property
    def text(self) -> str:
        joined = "".join(text for _, text in self.pieces)
        return self.final if self.final is not None and len(self.final) > len(joined) else joined


class Transcripts:
    """The model's transcript of each answer, kept by the bridge because the API won't.

    Truncating an item deletes its transcript on the server, so what the
    caller heard, in words, is ours to keep. Transcript deltas arrive
    interleaved with the audio deltas of the same answer: each is anchored to
    how much of its item's audio had arrived when it came, and a piece counts
    as heard when its audio began before the point the caller heard to.

    How exact: the model sends the words of a stretch of speech next to that
    stretch's audio, so a word lands within the audio delta it came with, 40
    to 240 ms of speech (a word or two). It says which words the caller heard,
    not at which syllable they were cut off.
    """

    def __init__(self) -> None:
        self._items: dict[str, _ItemWords] = {}

    def delta(self, item_id: str, text: str, audio_ms: int) -> None:
        """Words of `item_id`, arriving after `audio_ms` of its audio."""
        if text:
            self._items.setdefault(item_id, _ItemWords()).pieces.append((audio_ms, text))

    def done(self, item_id: str, transcript: str) -> None:
        """The item's whole transcript (it may hold words no delta carried)."""
        self._items.setdefault(item_id, _ItemWords()).final = transcript

    def text(self, item_id: str) -> str:
        words = self._items.get(item_id)
        return "" if words is None else words.text.strip()

    def split(self, item_id: str, heard_ms: int) -> tuple[str, str]:
        """(the words heard, the words cut off) of an item heard for `heard_ms`."""
        words = self._items.get(item_id)
        if words is None:
            return "", ""
        heard = "".join(text for anchor, text in words.pieces if anchor < heard_ms)
        whole = words.text
        cut = (
            whole[len(heard) :]
            if whole.startswith(heard)
            else "".join(text for anchor, text in words.pieces if anchor >= heard_ms)
        )
        return heard.strip(), cut.strip()
