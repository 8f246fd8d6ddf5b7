"""What a host project hears of its calls: Django signals, sent once a call's rows are committed.

    from django.dispatch import receiver
    from calls.signals import call_ended

    @receiver(call_ended)
    def note_the_end(sender, call_sid, call_pk, end_reason, **kwargs):
        Followup.objects.create(call_sid=call_sid, reason=end_reason)

Every signal is sent with `sender` the model class `calls.models.CallSession`
and at least `call_sid` (Twilio's) and `call_pk` (the row's primary key);
receivers take `**kwargs`, so a keyword added later breaks none of them.

Each is sent after the row it announces is committed (a receiver can read
it from any connection), in the order the rows were committed, on a thread
of the process's own: never on the event loop that carries the calls'
audio. Sync receivers run in that thread, with the ORM available; async
receivers through Django's own `send_robust`, on an event loop of the
host's (never the server's), their `sync_to_async` work (the async ORM's
too) back in that thread. A receiver that raises is logged (with its name,
the signal's and the call SID) and the others still run; a slow one delays
only the signals after it, never a call. Signals that find the process's
queue full are dropped, with a warning.

The signals tell of what a call's media stream records. A call handed over
to another process at a deploy ends its stream here (`call_ended`,
`end_reason` `server_shutdown`) and starts one there (`call_started` again,
the same `call_sid`); a call whose process died is ended by another's beat
(`server_lost`) with no signal, and one that never streamed has none.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["barge_in", "call_ended", "call_started", "call_transferred", "tool_called"]

# The call's media stream started (its `stream_started` row).
# call_sid: str, call_pk: int, from_number: str, to_number: str (E.164, as Twilio
# gave them), agent_name: str (the agent that answers; see `calls.agents`).
call_started = Signal()

# The caller interrupted the AI (a `BargeInEvent` row).
# call_sid: str, call_pk: int, figures: dict with `offset_ms` (since the stream
# started), `playout_remaining_ms` (what the caller had still to hear),
# `audio_end_ms` (what they heard of the answer; None if unknown), `reaction_ms`
# (float: speech event to Twilio's clear), `heard_text` and `cut_text` (the
# answer's words heard and cut off unheard), `response_cancelled` (bool).
barge_in = Signal()

# The AI called one of the host's tools (a `tool_call` row of the playout log).
# call_sid: str, call_pk: int, name: str, outcome: str (`ok`, `error`, `timeout`,
# `invalid_arguments`, `unknown_tool`, `not_run`), duration_ms: int (the tool's
# own run), arguments: dict (as the call's record keeps them: redacted).
tool_called = Signal()

# The AI transferred the call to a person (its `stream_ended` row, `transferred`);
# sent just before `call_ended`.
# call_sid: str, call_pk: int, target: str (where Twilio dials next).
call_transferred = Signal()

# The call's media stream ended (its `stream_ended` row): the stream's last signal.
# call_sid: str, call_pk: int, end_reason: str (`calls` end reasons, e.g.
# `caller_hangup`, `agent_hangup`, `transferred`, `server_shutdown`).
call_ended = Signal()
