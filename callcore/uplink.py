"""The caller's audio on its way to the model, and what the model has not yet shown it heard.

Twilio sends a 20 ms frame every 20 ms for as long as the stream is up
(silence included). Frames go to the model in appends of `chunk_ms` (each
append is a WebSocket message, the costliest thing a call sends), flushed by
size only: a chunk never waits longer than its own length.

A session can go quiet after hearing the caller and before answering; the
next one must hear the question. So the audio since the model last showed
life (an answer started, audio, a transcription) is kept, up to
`replay_max_ms`, and replayed to a replacement session first.
"""

from __future__ import annotations

import binascii
from collections import deque

from callcore.input_clock import InputClock
from callcore.protocol import realtime as rt
from callcore.protocol.twilio import Media
from playout import BYTES_PER_MS

# Caller audio the model has not shown any reaction to, kept to replay to a
# replacement session: the words said to a session that had gone quiet are
# heard by the next one.
REPLAY_MAX_MS = 10_000
# The replay goes in appends of this much.
_REPLAY_APPEND_MS = 1000


class Uplink:
    """Appends for the model from the caller's frames; the input clock; the replay buffer."""

    def __init__(self, chunk_ms: int, replay_max_ms: int = REPLAY_MAX_MS) -> None:
        # When each input position reached us (the model dates speech by input position).
        self.clock = InputClock()
        self._chunk_bytes = chunk_ms * BYTES_PER_MS
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._replay_max_bytes = replay_max_ms * BYTES_PER_MS
        self._unheard: deque[bytes] = deque()
        self._unheard_bytes = 0
        self._unheard_start = 0  # input position (bytes) of the first of them

    def audio(self, media: Media, now: float) -> str | None:
        """A frame of caller audio (not empty) at `now`: an append to send now, or None (held)."""
        audio = media.audio
        if not self._unheard:
            self._unheard_start = self.clock.input_ms * BYTES_PER_MS
        self.clock.record(len(audio), now)
        self._unheard.append(audio)
        self._unheard_bytes += len(audio)
        if self._unheard_bytes > self._replay_max_bytes:
            dropped = self._unheard.popleft()
            self._unheard_bytes -= len(dropped)
            self._unheard_start += len(dropped)
        if not self._held and len(audio) >= self._chunk_bytes:
            # A frame as large as a chunk goes as Twilio's own base64, unchanged.
            return rt.input_audio_append(media.payload_b64)
        self._held.append(audio)
        self._held_bytes += len(audio)
        return self.flush() if self._held_bytes >= self._chunk_bytes else None

    def flush(self) -> str | None:
        """The audio held for the next append, as an append now (before another client event)."""
        if not self._held:
            return None
        payload = binascii.b2a_base64(b"".join(self._held), newline=False).decode("ascii")
        self._held.clear()
        self._held_bytes = 0
        return rt.input_audio_append(payload)

    @property
    def unheard(self) -> bool:
        """Whether the model has caller audio it has not shown any reaction to."""
        return bool(self._unheard)

    def model_heard(self) -> None:
        """The model answered, or wrote down what was said: it has heard all of it."""
        self._unheard.clear()
        self._unheard_bytes = 0

    def replay(self) -> list[str]:
        """The audio since the model last showed life, as appends for a new session.

        The new session's input begins with that audio: the input clock is
        rebased, so its `audio_start_ms` still finds when the caller spoke.
        Audio held for the next append is part of it (or predates it).
        """
        self._held.clear()
        self._held_bytes = 0
        audio = b"".join(self._unheard)
        self.clock.rebase(self._unheard_start // BYTES_PER_MS)
        self._unheard_start = 0
        step = _REPLAY_APPEND_MS * BYTES_PER_MS
        return [
            rt.input_audio_append(
                binascii.b2a_base64(audio[offset : offset + step], newline=False).decode("ascii")
            )
            for offset in range(0, len(audio), step)
        ]
