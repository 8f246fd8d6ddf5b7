"""Maps the model's input-audio milliseconds back to our monotonic clock."""

from __future__ import annotations

from collections import deque

from playout import BYTES_PER_MS


class InputClock:
    """Arrival times of the caller's audio chunks, by input-audio position.

    The Realtime API reports caller speech as `audio_start_ms`: milliseconds of
    input audio since the session began. We forward every chunk in order, so
    that position identifies a chunk, and the chunk's arrival time is when the
    caller's audio reached us. Keeps `horizon_ms` of history.
    """

    def __init__(self, horizon_ms: int = 30_000) -> None:
        self._chunks: deque[tuple[int, int, float]] = deque()  # (start_ms, end_ms, arrival)
        self._total_bytes = 0
        self._horizon_ms = horizon_ms

    @property
    def input_ms(self) -> int:
        """Milliseconds of input audio forwarded so far."""
        return self._total_bytes // BYTES_PER_MS

    def record(self, audio_bytes: int, arrival: float) -> None:
        start = self.input_ms
        self._total_bytes += audio_bytes
        self._chunks.append((start, self.input_ms, arrival))
        while self._chunks and self._chunks[0][1] < self.input_ms - self._horizon_ms:
            self._chunks.popleft()

    def rebase(self, input_ms: int) -> None:
        """A new session: its input begins with the audio that was at `input_ms` here."""
        shift = min(input_ms, self.input_ms)
        self._total_bytes -= shift * BYTES_PER_MS
        self._chunks = deque(
            (start - shift, end - shift, arrival)
            for start, end, arrival in self._chunks
            if end - shift > 0
        )

    def arrival_of(self, input_ms: int) -> float | None:
        """When the chunk holding input position `input_ms` arrived; None if unknown."""
        for start, end, arrival in reversed(self._chunks):
            if start <= input_ms < end:
                # A chunk arrives once its last sample was captured.
                return arrival - (end - input_ms) / 1000
            if end <= input_ms:
                return None
        return None
