"""Truncates of the model's memory sent and not yet answered, and what a refusal leads to.

Each truncate goes with a client event id of its own. The service's refusal
does not name it (its `error.event_id` is null, in every report seen live),
so a refusal is matched by the id it carries, should it ever carry one,
then by what it says: the length it was asked for ("...shorter than
1000ms", "...but got -11 instead"), else (no such truncate, or none named)
the oldest truncate still unanswered. The service answers client events in the order they came:
once a truncate is answered, any sent before it and still waiting were
answered by something not recognised here (a server error, say), and are
forgotten rather than matched to a later refusal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from callcore.outputs import Log, Output, Record, ToModel
from callcore.protocol import realtime as rt
from callcore.records import RecordKind


@dataclass(frozen=True, slots=True)
class _Sent:
    item_id: str
    audio_end_ms: int
    retried: bool


class Truncates:
    def __init__(self) -> None:
        self._sent: dict[str, _Sent] = {}  # by client event id, oldest first
        self._seq = 0

    def send(self, item_id: str, audio_end_ms: int, retried: bool = False) -> ToModel:
        """The truncate of `item_id` to `audio_end_ms`, to send now."""
        self._seq += 1
        event_id = f"truncate_{self._seq}"
        self._sent[event_id] = _Sent(item_id, audio_end_ms, retried)
        return ToModel(rt.item_truncate(item_id, audio_end_ms, event_id))

    def truncated(self, item_id: str, audio_end_ms: int | None) -> None:
        """The model truncated `item_id`: its truncate (to that length, else its oldest)
        is answered."""
        mine = [key for key, sent in self._sent.items() if sent.item_id == item_id]
        exact = [key for key in mine if self._sent[key].audio_end_ms == audio_end_ms]
        if exact or mine:
            self._answered((exact or mine)[0])

    def _answered(self, key: str) -> _Sent:
        """Truncate `key` is answered; those sent before it were too."""
        keys = list(self._sent)
        for older in keys[: keys.index(key)]:
            del self._sent[older]
        return self._sent.pop(key)

    def _match(self, error: rt.ServerError) -> _Sent | None:
        if error.client_event_id in self._sent:
            return self._answered(error.client_event_id)
        if not (self._sent and rt.refuses_a_truncate(error)):
            return None
        asked = rt.refused_length_ms(error)
        named = [key for key, sent in self._sent.items() if sent.audio_end_ms == asked]
        return self._answered(named[0] if named else next(iter(self._sent)))

    def forget(self) -> None:
        """A new session: the old one's answers will never come."""
        self._sent.clear()

    def refused(self, error: rt.ServerError, now: float) -> list[Output]:
        """What to do about `error` if it refuses a truncate of ours (else nothing).

        Never let a refusal stand: a model whose memory holds audio the caller
        never heard answers as if it had been heard (and other bridges have
        lost all audio for the rest of a call by treating this error as
        fatal). "Audio content of 900ms is already shorter than 1000ms": the
        model holds less of the item than we played (its count of a cancelled
        answer's audio can stop short of ours), and all of what it holds was
        heard: truncate there, once. Anything else (no audio to truncate, or
        the retry refused too): the item goes, so the model never takes
        unheard words as said.
        """
        sent = self._match(error)
        if sent is None:
            return []
        limit = rt.audio_limit_ms(error.message)
        out: list[Output] = []
        if not sent.retried and limit is not None and 0 < limit < sent.audio_end_ms:
            out.append(self.send(sent.item_id, limit, retried=True))
            action, clamped = "retried", limit
        else:
            out.append(ToModel(rt.item_delete(sent.item_id)))
            action, clamped = "deleted", 0
        out.append(
            Log(
                logging.WARNING,
                "truncate of %s at %d ms rejected (%s); %s",
                (sent.item_id, sent.audio_end_ms, error.code, action),
            )
        )
        out.append(
            Record(
                RecordKind.TRUNCATE_REJECTED,
                now,
                details={
                    "item_id": sent.item_id,
                    "audio_end_ms": sent.audio_end_ms,
                    "code": error.code,
                    "action": action,
                    "retry_audio_end_ms": clamped or None,
                },
            )
        )
        return out
