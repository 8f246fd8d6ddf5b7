"""A call's conversation so far, read back from its `conversation_turn` records.

What a process that takes over a call (or a reviewer) needs to seed a new
Realtime session: the same turns the call's core keeps in memory, in order,
each with its latest words (a turn is recorded again when its words change,
e.g. the heard part of an answer cut by a barge-in).
"""

from __future__ import annotations

from callcore.conversation import MAX_SEED_TURNS, Turn
from callcore.records import RecordKind
from calls.models import PlayoutLog


def conversation_so_far(call_pk: int, limit: int = MAX_SEED_TURNS) -> list[Turn]:
    """The call's turns with words, oldest first, at most `limit` of the latest.

    Ordered by when each turn was first recorded (wall clock: a handed-over
    call's streams each count their offsets from their own start).
    """
    rows = PlayoutLog.objects.filter(call_id=call_pk, kind=RecordKind.CONVERSATION_TURN).order_by(
        "occurred_at", "id"
    )
    turns: dict[str, Turn] = {}
    for details in rows.values_list("details", flat=True):
        item_id = str(details.get("item_id", ""))
        role, text = str(details.get("role", "")), str(details.get("text", ""))
        if item_id in turns:
            turns[item_id].text = text
        else:
            turns[item_id] = Turn(len(turns) + 1, role, item_id, text)
    return [turn for turn in turns.values() if turn.text][-limit:]
