"""Input transcription: what the service hears the caller say in a committed item's audio."""

from __future__ import annotations

from dataclasses import dataclass

from simulators import signals, watermark
from simulators.realtime.script import RealtimeScript


@dataclass(frozen=True)
class Turn:
    """A user audio item the caller's speech committed, until it is transcribed."""

    number: int
    """1-based, in the order the session committed user audio."""
    audio_start_ms: int | None = None
    """Its speech start (`speech_started.audio_start_ms`), in ms of input audio since
    the session began; None for an item committed by the client."""
    audio_end_ms: int | None = None
    """Its end (`speech_stopped.audio_end_ms`), likewise."""


def heard(input_audio: bytes | bytearray, turn: Turn) -> str | None:
    """The words in the item's own input audio, None when it carries none.

    The words travel in the audio (`simulators.watermark`): each utterance in the
    item is heard, in order, and noises without words add none (a cough alone
    is heard as ""). None when the item's audio holds no packet at all, or was
    not kept (`keep_input_audio=False`).
    """
    if turn.audio_start_ms is None or turn.audio_end_ms is None:
        return None
    start = turn.audio_start_ms * signals.BYTES_PER_MS
    end = turn.audio_end_ms * signals.BYTES_PER_MS
    utterances = watermark.decode_utterances(bytes(input_audio[start:end]))
    if not utterances:
        return None
    return " ".join(text for text in utterances if text)


def transcript(script: RealtimeScript, turn: Turn, input_audio: bytes | bytearray) -> str:
    """What the service reports the caller said in `turn`: the words heard in its audio,
    else the script's `caller_words` for the turn (else a numbered placeholder)."""
    words = heard(input_audio, turn)
    return words if words is not None else script.caller_turn(turn.number)
