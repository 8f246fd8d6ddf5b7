"""One call's decisions, sans-IO: events and `now` in; messages, records and the end out.

`CallCore` is to a call what `playout.PlayoutTracker` is to its audio, and
what aioquic's `QuicConnection` is to a connection: it never reads a clock,
touches a socket or awaits. Its shell (`calls.live.bridge`) feeds it what
arrives with the time it arrived, sends what `pop_output()` returns, in
order, and calls `timer(now)` at `next_timer()`.
"""

from __future__ import annotations

import binascii
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, assert_never

from callcore.barge_in import BargeIn, judge_silent_speech, speech_onset
from callcore.conversation import Conversation, Turn
from callcore.goodbye import Goodbye, Hangup
from callcore.input_clock import InputClock
from callcore.intervals import PlayoutIntervals
from callcore.outputs import (
    CallUpdate,
    Clear,
    EndOfCall,
    Log,
    Output,
    Record,
    ReplaceModel,
    ToModel,
    ToTwilio,
)
from callcore.protocol import realtime as rt
from callcore.protocol.twilio import Media, clear_message, mark_message
from callcore.records import EndReason, RecordKind
from callcore.transcripts import Transcripts
from callcore.watchdog import ModelWatchdog, Quiet, WatchdogConfig
from playout import BYTES_PER_MS, AudioFrame, Outbound, PlayoutConfig, PlayoutTracker

# A stream that keeps sending garbage is not a phone call.
MAX_PROTOCOL_ERRORS = 50
# Malformed messages logged per call; the rest are only counted and recorded.
LOGGED_PROTOCOL_ERRORS = 5
# DTMF digits recorded per call; the rest are counted (a caller holding a key,
# or a peer flooding, must not write a row per event).
MAX_DTMF_RECORDS = 100
# Caller audio the model has not shown any reaction to (nothing from it since),
# kept to replay to a replacement session: the words said to a session that
# had gone quiet are heard by the next one.
REPLAY_MAX_MS = 10_000
_REPLAY_APPEND_MS = 1000


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """What one call needs to know; durations in integer ms."""

    stream_sid: str
    playout: PlayoutConfig = field(default_factory=PlayoutConfig)
    # The VAD's prefix padding: `audio_start_ms` + this is the speech's real onset.
    prefix_padding_ms: int = 300
    # Empty: the AI waits for the caller to speak first.
    greeting_instructions: str = ""
    # Caller audio goes to the model in appends of this much (Twilio's 20 ms frames
    # joined): each append is a WebSocket message, the costliest thing a call sends.
    # 20: every frame as it comes.
    uplink_chunk_ms: int = 40
    # The most audio one `media` message to Twilio carries: frames sent together
    # (a refill of the playout, `PLAYOUT_REFILL_MS`) go as one message.
    media_message_ms: int = 100
    # When a model that went quiet or away counts as a fault (see `callcore.watchdog`).
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    # Replacement sessions opened per call before it ends as `model_unresponsive`.
    max_model_recoveries: int = 2
    # A call handed over from another process: the conversation so far. The new
    # session is told it instead of greeting the caller again.
    resumed_turns: tuple[Turn, ...] = ()


class CallCore:
    """The decisions of one bridged call; every input takes `now` (monotonic seconds).

    Inputs must come with non-decreasing `now`. Outputs accumulate until the
    shell pops them; a `Clear` is always put first, ahead of audio still
    queued, and that queued audio of the cancelled generation is dropped.
    After `EndOfCall` every input is ignored.
    """

    def __init__(self, config: CoreConfig, started_at: float) -> None:
        self.config = config
        self.tracker = PlayoutTracker(config.playout)
        self.input_clock = InputClock()
        self.goodbye = Goodbye()
        self.intervals = PlayoutIntervals()
        self.transcripts = Transcripts()
        self.conversation = Conversation()
        self.conversation.preload(list(config.resumed_turns))
        self.watchdog = ModelWatchdog(config.watchdog, started_at)
        self._unheard: deque[bytes] = deque()
        self._unheard_bytes = 0
        self._unheard_start = 0  # input position (bytes) of the first of them
        self.model_recoveries = 0
        # A replacement session is being opened: no deadline runs meanwhile.
        self._replacing = False
        self._model_open = False
        self._answer_owed = False
        # A deploy: end as server_shutdown at the next pause, or by this time.
        self._handover_by: float | None = None
        self._caller_speaking = False
        # Answers whose words are settled (what was heard of a cut one): later
        # transcripts of them do not change the conversation.
        self._settled: set[str] = set()
        # Truncates awaiting the model's answer, by client event id: (item, ms, retried).
        self._truncates: dict[str, tuple[str, int, bool]] = {}
        self._event_seq = 0
        # |estimate error| of every accepted mark echo, ms: how true the playout truth was.
        self._estimate_errors: list[int] = []
        self.responses_seen = 0
        self.protocol_errors = 0
        self.dtmf_digits = 0
        self.empty_frames = 0
        self.ended: EndReason | None = None
        self._started_at = started_at
        self._out: deque[Output] = deque()
        self._model_lost = False
        self._barge_in: BargeIn | None = None  # waiting for its clear to be sent
        # next_timer() is asked after every input; only playout and the drain move it,
        # not the caller's audio (50 frames a second), so it is kept until they do.
        self._next_timer: float | None = None
        self._timer_stale = True
        self._uplink: list[bytes] = []
        self._uplink_bytes = 0
        self._chunk_bytes = config.uplink_chunk_ms * BYTES_PER_MS
        self._message_bytes = max(config.media_message_ms, 1) * BYTES_PER_MS
        self._media_prefix = (
            f'{{"event":"media","streamSid":"{config.stream_sid}","media":{{"payload":"'
        )
        self._out.append(Record(RecordKind.STREAM_STARTED, started_at))

    # --- outputs ---------------------------------------------------------------------------

    def pop_output(self) -> Output | None:
        """The next thing to do, or None when there is nothing (yet)."""
        return self._out.popleft() if self._out else None

    @property
    def has_output(self) -> bool:
        """Whether `pop_output` has something to give."""
        return bool(self._out)

    def outputs(self) -> list[Output]:
        """Everything pending, in order (drains it)."""
        out = list(self._out)
        self._out.clear()
        return out

    def next_timer(self) -> float | None:
        """When to call `timer(now)` next; None: nothing will change without an input."""
        if self.ended is not None:
            return None
        if self._timer_stale:
            candidates = [self.tracker.next_deadline(), self.goodbye.hard_deadline]
            if self._watching:
                candidates.append(self.watchdog.deadline)
            candidates.append(self._handover_by)
            due = [t for t in candidates if t is not None]
            self._next_timer = min(due) if due else None
            self._timer_stale = False
        return self._next_timer

    def offset_ms(self, at: float) -> int:
        """Milliseconds since the stream started."""
        return round((at - self._started_at) * 1000)

    # --- the model -------------------------------------------------------------------------

    def model_opened(self, now: float, connect_ms: float = 0.0, ahead: bool = False) -> None:
        """The Realtime session is open and configured; the caller's audio may flow.

        `connect_ms` is how long connecting to the model took; `ahead`, whether
        that began at the voice webhook (before the stream started) rather than
        during this set-up.
        """
        if self.ended is not None:
            return
        details: dict[str, Any] = {
            "setup_ms": self.offset_ms(now),
            "connect_ms": round(connect_ms),
            "opened_ahead": ahead,
        }
        self._out.append(Record(RecordKind.MODEL_SESSION_OPENED, now, details=details))
        self._model_open = True
        self._timer_stale = True
        self.watchdog.reset(now)
        if self.config.resumed_turns:
            self._flush_uplink()
            for turn in self.config.resumed_turns:
                self._out.append(ToModel(rt.message_item(turn.role, turn.text)))
            if self.config.resumed_turns[-1].role == "user":
                # The caller spoke last: the answer they were waiting for is owed.
                self._out.append(ToModel(rt.response_create()))
                self.watchdog.response_due(now)
                self._timer_stale = True
        elif self.config.greeting_instructions:
            self._flush_uplink()
            self._out.append(ToModel(rt.response_create(self.config.greeting_instructions)))
            self.watchdog.response_due(now)
            self._timer_stale = True

    def model_open_failed(self, error: str, now: float) -> None:
        if self.ended is not None:
            return
        self._out.append(Log(logging.ERROR, "could not open the Realtime session: %s", (error,)))
        details = {"code": "connect_failed", "message": error}
        self._out.append(Record(RecordKind.MODEL_ERROR, now, details=details))
        self._finish(EndReason.MODEL_CONNECT_FAILED, now)

    def model_unreadable(self, reason: str, now: float) -> None:
        if self.ended is None:
            self._out.append(
                Log(logging.WARNING, "unreadable Realtime event skipped: %s", (reason,))
            )

    def model_closed(self, clean: bool, now: float) -> None:
        """The Realtime socket closed while the caller is there: a new session takes over.

        During a goodbye nothing more is needed of the model: what the caller
        hears plays out, then the call ends.
        """
        if self.ended is not None or self._model_lost or self._replacing:
            return
        self._timer_stale = True
        how = "clean" if clean else "abnormal"
        self._out.append(Log(logging.WARNING, "Realtime connection closed (%s)", (how,)))
        message = "closed cleanly" if clean else "closed abnormally"
        self._out.append(
            Record(
                RecordKind.MODEL_ERROR,
                now,
                details={"code": "connection_closed", "message": message},
            )
        )
        if self.goodbye.state is Hangup.NONE:
            self._model_fault("connection_closed", self.watchdog.answer_owed, now)
            return
        self._model_lost = True
        if self.goodbye.state is not Hangup.DRAINING:
            self._out += self.goodbye.start(self.tracker, now, EndReason.MODEL_DISCONNECTED)
        self._pump(now)

    # --- a model that went quiet or away ---------------------------------------------------

    def _model_fault(self, what: str, owed: bool, now: float) -> None:
        """Replace the session (the conversation carried over), or end the call if we can't."""
        self._timer_stale = True
        attempt = self.model_recoveries + 1
        status = self.tracker.playout_status(now)
        details = {"what": what, "attempt": attempt, "answer_owed": owed}
        self._out.append(Record(RecordKind.MODEL_FAULT, now, status, details))
        if attempt > self.config.max_model_recoveries:
            self._out.append(
                Log(
                    logging.ERROR,
                    "model %s and %d replacement sessions did not help; ending the call",
                    (what, self.model_recoveries),
                )
            )
            self._finish(EndReason.MODEL_UNRESPONSIVE, now)
            return
        self._out.append(
            Log(logging.WARNING, "model %s: opening replacement session %d", (what, attempt))
        )
        self.model_recoveries = attempt
        self._replacing = True
        self._truncates.clear()
        # The old session's answers are over; what of them was sent still plays.
        self.tracker.close_all(now)
        for turn in self.conversation.unsettled("assistant"):
            self._turn_words(turn.item_id, "assistant", self.transcripts.text(turn.item_id), now)
        self.watchdog.reset(now)
        self._out.append(ReplaceModel(attempt))
        seed = self.conversation.seed()
        for turn in seed:
            self._out.append(ToModel(rt.message_item(turn.role, turn.text)))
        replayed = self._replay_unheard()
        self._answer_owed = owed
        if owed:
            if replayed:
                # The replayed words become the caller's turn now; if server VAD
                # already made one of them (and its answer), this commit and the
                # response.create are refused harmlessly: one answer either way.
                self._out.append(ToModel(rt.input_audio_commit()))
            greeting = self.config.greeting_instructions if not seed else None
            self._out.append(ToModel(rt.response_create(greeting or None)))
        self._pump(now)

    def _replay_unheard(self) -> int:
        """The caller's audio since the model last showed life, to the new session first.

        Its input then begins with that audio: the input clock is rebased so
        the new session's `audio_start_ms` still finds when the caller spoke.
        """
        self._uplink.clear()  # held audio is in `_unheard` (or predates the last event)
        self._uplink_bytes = 0
        audio = b"".join(self._unheard)
        self.input_clock.rebase(self._unheard_start // BYTES_PER_MS)
        self._unheard_start = 0
        step = _REPLAY_APPEND_MS * BYTES_PER_MS
        for offset in range(0, len(audio), step):
            payload = binascii.b2a_base64(audio[offset : offset + step], newline=False)
            self._out.append(ToModel(rt.input_audio_append(payload.decode("ascii"))))
        return len(audio)

    def model_replaced(self, now: float, connect_ms: float = 0.0) -> None:
        """The replacement session is open, configured, and has the conversation."""
        if self.ended is not None or not self._replacing:
            return
        self._replacing = False
        self._timer_stale = True
        details = {
            "attempt": self.model_recoveries,
            "connect_ms": round(connect_ms),
            "turns": len(self.conversation.seed()),
            "answer_requested": self._answer_owed,
        }
        self._out.append(Record(RecordKind.MODEL_RECOVERED, now, details=details))
        self._out.append(
            Log(logging.INFO, "replacement model session %d open", (details["attempt"],))
        )
        if self._answer_owed:
            self.watchdog.response_due(now)

    def model_replace_failed(self, error: str, now: float) -> None:
        if self.ended is not None or not self._replacing:
            return
        self._replacing = False
        details = {"code": "connect_failed", "message": error}
        self._out.append(Record(RecordKind.MODEL_ERROR, now, details=details))
        self._model_fault("replacement_failed", self._answer_owed, now)

    def _turn_words(self, item_id: str, role: str, text: str, now: float) -> None:
        turn = self.conversation.words(item_id, role, text)
        if turn is not None:
            self._out.append(_turn_record(turn, now))

    def model_event(self, event: rt.ServerEvent, now: float) -> None:
        """One server event, at the time it arrived."""
        if self.ended is not None:
            return
        self._timer_stale = True
        self.watchdog.heard(now)
        if self._unheard and isinstance(
            event, rt.ResponseCreated | rt.AudioDelta | rt.InputTranscribed
        ):
            # The model answered, or wrote down what was said: it has heard it.
            # (Speech events alone are not enough: a session can detect a turn and
            # then go quiet, and the next one must hear the question.)
            self._unheard.clear()
            self._unheard_bytes = 0
        match event:
            case rt.AudioDelta():
                self._audio_delta(event, now)
            case rt.SpeechStarted():
                self._caller_speaking = True
                self.conversation.begin(event.item_id, "user")
                self.watchdog.caller_speaking()
                self._speech_started(event, now)
            case rt.ResponseCreated():
                self.watchdog.response_started(event.response_id, now)
                self._response_created(event, now)
            case rt.AudioDone():
                self.watchdog.activity(event.response_id, now)
                self.tracker.audio_done(event.response_id, event.item_id, now)
                self._pump(now)
            case rt.ResponseDone():
                self._response_done(event, now)
            case rt.FunctionCallDone():
                self.watchdog.activity(event.response_id, now)
                if event.name == rt.END_CALL_TOOL:
                    live = self.tracker.is_live_response(event.response_id)
                    status = self.tracker.playout_status(now)
                    self._out += self.goodbye.requested(event.call_id, live, now, status)
            case rt.SpeechStopped():
                self._caller_speaking = False
                self.watchdog.response_due(now)  # server VAD answers now
                self._out.append(
                    Record(
                        RecordKind.SPEECH_STOPPED,
                        now,
                        self.tracker.playout_status(now),
                        {"audio_end_ms": event.audio_end_ms},
                    )
                )
            case rt.ItemTruncated():
                self._truncates = {
                    key: pending
                    for key, pending in self._truncates.items()
                    if pending[0] != event.item_id
                }
                details = {"item_id": event.item_id, "audio_end_ms": event.audio_end_ms}
                self._out.append(Record(RecordKind.TRUNCATED, now, details=details))
            case rt.ServerError():
                self._error(event, now)
            case rt.SessionCreated():
                if event.session_id:
                    self._out.append(CallUpdate({"model_session_id": event.session_id[:64]}))
            case rt.TranscriptDelta():
                self.watchdog.activity(event.response_id, now)
                audio_ms = self.tracker.item_audio_ms(event.item_id)
                self.transcripts.delta(event.item_id, event.delta, audio_ms)
            case rt.TranscriptDone():
                self.transcripts.done(event.item_id, event.transcript)
                if event.item_id not in self._settled:
                    self._turn_words(event.item_id, "assistant", event.transcript, now)
            case rt.InputTranscribed():
                self._turn_words(event.item_id, "user", event.transcript, now)
            case rt.ItemDeleted() | rt.Ignored():
                pass
            case _:
                assert_never(event)

    def _audio_delta(self, event: rt.AudioDelta, now: float) -> None:
        if not event.valid:
            self._out.append(Log(logging.WARNING, "audio delta with bad base64 skipped"))
            return
        self.watchdog.activity(event.response_id, now)
        if self.tracker.audio_delta(event.response_id, event.item_id, event.audio, now):
            self.conversation.begin(event.item_id, "assistant")
            self._pump(now)

    def _response_created(self, event: rt.ResponseCreated, now: float) -> None:
        generation = self.tracker.response_started(event.response_id, now)
        self.responses_seen += 1
        self._out.append(
            Record(
                RecordKind.RESPONSE_STARTED,
                now,
                self.tracker.playout_status(now),
                {"response_id": event.response_id, "generation": generation},
            )
        )

    def _response_done(self, event: rt.ResponseDone, now: float) -> None:
        tracker = self.tracker
        tracker.response_done(event.response_id, now)
        self.watchdog.response_done(event.response_id, now)
        if event.status == "completed":
            self.model_recoveries = 0  # the session works: faults from here are new ones
        self._out.append(
            Record(
                RecordKind.RESPONSE_DONE,
                now,
                tracker.playout_status(now),
                {
                    "response_id": event.response_id,
                    "status": event.status,
                    "audio_ms": tracker.response_audio_ms(event.response_id),
                },
            )
        )
        live = tracker.is_live_response(event.response_id)
        for call_id in event.end_call_ids:
            self._out += self.goodbye.requested(call_id, live, now, tracker.playout_status(now))
        self._out += self.goodbye.response_done(tracker, now)
        self._pump(now)

    def _error(self, event: rt.ServerError, now: float) -> None:
        truncate = self._truncates.pop(event.client_event_id, None)
        if truncate is not None:
            self._truncate_rejected(truncate, event, now)
        if event.code == "response_cancel_not_active":
            # The server's own interrupt_response won the race: nothing to cancel.
            self._out.append(Log(logging.INFO, "response.cancel found no active response"))
        else:
            self._out.append(
                Log(
                    logging.WARNING,
                    "Realtime error event: code=%s message=%s",
                    (event.code, event.message),
                )
            )
        details = {"code": event.code, "message": event.message}
        self._out.append(Record(RecordKind.MODEL_ERROR, now, details=details))

    def _truncate(self, item_id: str, audio_end_ms: int, retried: bool = False) -> None:
        self._event_seq += 1
        event_id = f"truncate_{self._event_seq}"
        self._truncates[event_id] = (item_id, audio_end_ms, retried)
        self._out.append(ToModel(rt.item_truncate(item_id, audio_end_ms, event_id)))

    def _truncate_rejected(
        self, truncate: tuple[str, int, bool], event: rt.ServerError, now: float
    ) -> None:
        """The model refused a truncate: clamp to the audio it has and try once more, else
        delete the item.

        Never let it stand: a model whose memory holds audio the caller never
        heard answers as if it had been heard (and other bridges have lost all
        audio for the rest of a call by treating this error as fatal).
        """
        item_id, audio_end_ms, retried = truncate
        # "Audio content of 900ms is already shorter than 1000ms": the model holds less
        # of the item than we played (its count of a cancelled answer's audio can stop
        # short of ours). All of what it holds was heard: truncate there, once.
        limit = rt.audio_limit_ms(event.message)
        if not retried and limit is not None and 0 < limit < audio_end_ms:
            self._truncate(item_id, limit, retried=True)
            action, clamped = "retried", limit
        else:
            # Anything else (no audio to truncate, or the retry refused too): the
            # item goes, so the model never takes unheard words as said.
            self._out.append(ToModel(rt.item_delete(item_id)))
            action, clamped = "deleted", 0
        self._out.append(
            Log(
                logging.WARNING,
                "truncate of %s at %d ms rejected (%s); %s",
                (item_id, audio_end_ms, event.code, action),
            )
        )
        self._out.append(
            Record(
                RecordKind.TRUNCATE_REJECTED,
                now,
                details={
                    "item_id": item_id,
                    "audio_end_ms": audio_end_ms,
                    "code": event.code,
                    "action": action,
                    "retry_audio_end_ms": clamped or None,
                },
            )
        )

    # --- barge-in --------------------------------------------------------------------------

    def _speech_started(self, event: rt.SpeechStarted, now: float) -> None:
        tracker = self.tracker
        onset = speech_onset(
            event, self.config.prefix_padding_ms, self.input_clock, tracker.link.rtt_s
        )
        if not tracker.is_speaking(now):
            self._out += judge_silent_speech(tracker, onset, now, self.offset_ms)
            return
        barge_in = BargeIn.before_cancel(tracker, onset, now, self.offset_ms)
        outcome = tracker.cancel(now)
        heard_text, cut_text = "", ""
        if outcome.truncate is not None:
            truncated = outcome.truncate
            heard_text, cut_text = self.transcripts.split(truncated.item_id, truncated.audio_end_ms)
        unheard = [self.transcripts.text(item_id) for item_id in outcome.delete_item_ids]
        cut_text = " ".join(text for text in [cut_text, *unheard] if text)
        barge_in.cancelled(outcome, heard_text, cut_text)
        if outcome.truncate is not None:
            self._settled.add(outcome.truncate.item_id)
            self._turn_words(outcome.truncate.item_id, "assistant", heard_text, now)
        for item_id in outcome.delete_item_ids:
            self._settled.add(item_id)
            self.conversation.forget(item_id)
        self._drop_unsent(outcome.cancelled_generation)
        # The clear leaves first: every millisecond before it, the caller hears the AI.
        self._out.appendleft(Clear(clear_message(self.config.stream_sid)))
        self._flush_uplink()
        if barge_in.response_cancelled:
            self._out.append(ToModel(rt.response_cancel()))
        if outcome.truncate is not None:
            self._truncate(outcome.truncate.item_id, outcome.truncate.audio_end_ms)
        self._out += [ToModel(rt.item_delete(item_id)) for item_id in outcome.delete_item_ids]
        status = tracker.playout_status(now)
        self._out += self.intervals.close(now, status, self.offset_ms(now), interrupted=True)
        self._out += self.goodbye.cancel(now, "barge_in")
        self._barge_in = barge_in

    def clear_sent(self, now: float) -> None:
        """The shell sent the barge-in's `Clear` (or tried: the caller may be gone)."""
        barge_in, self._barge_in = self._barge_in, None
        if barge_in is not None:
            self._out += barge_in.records(now)

    def _drop_unsent(self, generation: int) -> None:
        self._out = deque(
            out
            for out in self._out
            if not (
                isinstance(out, ToTwilio)
                and out.generation is not None
                and out.generation <= generation
            )
        )

    # --- the caller ------------------------------------------------------------------------

    def caller_audio(self, media: Media, now: float) -> None:
        """A media frame from Twilio: forwarded to the model in order, `uplink_chunk_ms` at a time.

        Flushed by size only: Twilio sends a frame every 20 ms for as long as
        the stream is up (silence included), so a chunk never waits longer.
        """
        if self.ended is not None:
            return
        if not media.audio:
            self.empty_frames += 1  # nothing to hear, nothing to forward
            return
        if not self._unheard:
            self._unheard_start = self.input_clock.input_ms * BYTES_PER_MS
        self.input_clock.record(len(media.audio), now)
        self._unheard.append(media.audio)
        self._unheard_bytes += len(media.audio)
        if self._unheard_bytes > REPLAY_MAX_MS * BYTES_PER_MS:
            dropped = self._unheard.popleft()
            self._unheard_bytes -= len(dropped)
            self._unheard_start += len(dropped)
        if not self._uplink and len(media.audio) >= self._chunk_bytes:
            self._out.append(ToModel(rt.input_audio_append(media.payload_b64)))
            return
        self._uplink.append(media.audio)
        self._uplink_bytes += len(media.audio)
        if self._uplink_bytes >= self._chunk_bytes:
            self._flush_uplink()

    def _flush_uplink(self) -> None:
        """Caller audio held for the next append goes now (before any other client event)."""
        if self._uplink:
            payload = binascii.b2a_base64(b"".join(self._uplink), newline=False).decode("ascii")
            self._out.append(ToModel(rt.input_audio_append(payload)))
            self._uplink.clear()
            self._uplink_bytes = 0

    def mark_echoed(self, name: str, now: float) -> None:
        if self.ended is not None:
            return
        self._timer_stale = True
        echo = self.tracker.mark_echoed(name, now)
        if echo.accepted:
            self.intervals.note_echo(echo)
            self._estimate_errors.append(abs(echo.estimate_error_ms))
        self._pump(now)

    def caller_dtmf(self, digit: str, now: float) -> None:
        if self.ended is not None:
            return
        self.dtmf_digits += 1
        if self.dtmf_digits > MAX_DTMF_RECORDS:
            if self.dtmf_digits == MAX_DTMF_RECORDS + 1:
                self._out.append(
                    Log(
                        logging.WARNING,
                        "more than %d DTMF digits: the rest are counted, not recorded",
                        (MAX_DTMF_RECORDS,),
                    )
                )
            return
        self._out.append(Log(logging.INFO, "DTMF digit received"))
        status = self.tracker.playout_status(now)
        self._out.append(Record(RecordKind.DTMF, now, status, {"digit": digit}))

    def protocol_error(self, reason: str, now: float) -> None:
        """A malformed Twilio message, skipped; too many of them end the call."""
        if self.ended is not None:
            return
        self.protocol_errors += 1
        if self.protocol_errors <= LOGGED_PROTOCOL_ERRORS:
            self._out.append(Log(logging.WARNING, "twilio message skipped: %s", (reason,)))
            self._out.append(Record(RecordKind.PROTOCOL_ERROR, now, details={"reason": reason}))
        if self.protocol_errors >= MAX_PROTOCOL_ERRORS:
            self._out.append(Log(logging.ERROR, "too many malformed messages; ending the call"))
            self._finish(EndReason.PROTOCOL_ERRORS, now)

    # --- time and the end ------------------------------------------------------------------

    def timer(self, now: float) -> None:
        """`next_timer()` has come (calling it early or late is harmless)."""
        self._timer_stale = True
        if self.ended is None:
            if self._watching and self._model_quiet(now):
                return
            self._pump(now)

    @property
    def _watching(self) -> bool:
        """Whether the model is watched: its session is open, nothing is replacing it,
        and no goodbye is under way (nothing more is needed of it then)."""
        return self._model_open and not self._replacing and self.goodbye.state is Hangup.NONE

    def _model_quiet(self, now: float) -> bool:
        """Probe a model that has said nothing for a while; a fault if it stays quiet."""
        watchdog = self.watchdog
        if watchdog.probe_due(now):
            self._out.append(ToModel(rt.session_probe()))
            watchdog.probe_sent(now)
        owed = watchdog.answer_owed
        quiet = watchdog.expired(now)
        if quiet is None:
            return False
        what = {
            Quiet.NO_RESPONSE: "did not start an answer that was due",
            Quiet.STALLED: "stopped in the middle of an answer",
            Quiet.UNRESPONSIVE: "did not answer a probe",
        }[quiet]
        self._out.append(Log(logging.WARNING, "model %s", (what,)))
        self._model_fault(str(quiet), owed or quiet is not Quiet.UNRESPONSIVE, now)
        return True

    def end(self, reason: EndReason, now: float) -> None:
        """End the call now (the caller left, a fault, an operator): records, then `EndOfCall`."""
        if self.ended is None:
            self._finish(reason, now)

    def _pump(self, now: float) -> None:
        """Frames and marks due now; then whether the AI stopped being heard, or the drain ended."""
        tracker = self.tracker
        out = tracker.poll(now)
        if out:
            self._send_playout(out, now)
        if self.intervals.open and not tracker.is_speaking(now):
            until_end = tracker.deadline_offset_ms(now) or 0
            status = tracker.playout_status(now)
            end_offset = self.offset_ms(now) + until_end
            self._out += self.intervals.close(now, status, end_offset, interrupted=False)
        records, reason = self.goodbye.finished(tracker, now)
        self._out += records
        if reason is not None:
            self._finish(reason, now)
        elif (
            self.ended is None
            and self._handover_by is not None
            and (now >= self._handover_by or self._at_pause(now))
        ):
            self._out.append(
                Log(
                    logging.INFO,
                    "handing the call over (%s)",
                    ("at a pause" if now < self._handover_by else "grace period over",),
                )
            )
            self._finish(EndReason.SERVER_SHUTDOWN, now)

    def hand_over(self, now: float, grace_s: float) -> None:
        """The process is stopping: end as `server_shutdown` (handed over by Twilio's
        `<Connect action>`) at the next pause, or after `grace_s` at the latest."""
        if self.ended is not None or self._handover_by is not None:
            return
        self._handover_by = now + grace_s
        self._timer_stale = True
        self._pump(now)

    def _at_pause(self, now: float) -> bool:
        """Nobody is saying anything, and nothing is on its way: the AI neither heard
        nor generating, the caller not speaking, no answer owed, no goodbye under way."""
        return not (
            self.tracker.is_speaking(now)
            or self.tracker.generating()
            or self._caller_speaking
            or self.watchdog.answer_owed
            or self._replacing
            or self.goodbye.state is not Hangup.NONE
        )

    def _send_playout(self, out: list[Outbound], now: float) -> None:
        """The tracker's frames and marks, as Twilio messages.

        Frames sent together (one refill) go as one `media` message of up to
        `media_message_ms`, as long as they follow each other in one item and
        no mark comes between (the tracker keeps marks at the ends of sends):
        the same audio, in the same order, in a tenth of the messages at the
        defaults. Twilio plays a message's payload as it plays frames.
        """
        status = self.tracker.playout_status(now)
        batch: list[bytes] = []
        batch_bytes = 0
        last: AudioFrame | None = None
        for item in out:
            if isinstance(item, AudioFrame):
                started = self.intervals.frame_sent(item, now, status)
                if started is not None:
                    self._out.append(started)
                joins = (
                    last is not None
                    and item.item_id == last.item_id
                    and item.generation == last.generation
                    and batch_bytes + len(item.payload) <= self._message_bytes
                )
                if not joins and last is not None:
                    self._send_media(batch, last.generation)
                    batch, batch_bytes = [], 0
                batch.append(item.payload)
                batch_bytes += len(item.payload)
                last = item
            else:
                if last is not None:
                    self._send_media(batch, last.generation)
                    batch, batch_bytes, last = [], 0, None
                text = mark_message(self.config.stream_sid, item.name)
                self._out.append(ToTwilio(text, item.generation))
        if last is not None:
            self._send_media(batch, last.generation)

    def _send_media(self, payloads: list[bytes], generation: int) -> None:
        audio = payloads[0] if len(payloads) == 1 else b"".join(payloads)
        payload = binascii.b2a_base64(audio, newline=False).decode("ascii")
        self._out.append(ToTwilio(f'{self._media_prefix}{payload}"}}}}', generation))

    def _finish(self, reason: EndReason, now: float) -> None:
        self.ended = reason
        tracker = self.tracker
        ai_audio_ms = self.intervals.audio_sent_bytes // BYTES_PER_MS
        status = tracker.playout_status(now)
        # Whatever was still playing stops with the stream.
        until_end = min(0, tracker.deadline_offset_ms(now) or 0)
        self._out += self.intervals.close(
            now, status, self.offset_ms(now) + until_end, interrupted=False
        )
        details = {
            "end_reason": str(reason),
            "dtmf_digits": self.dtmf_digits,
            "protocol_errors": self.protocol_errors,
            "empty_frames": self.empty_frames,
        }
        self._out.append(Record(RecordKind.STREAM_ENDED, now, status, details))
        link = tracker.link.stats()
        errors = sorted(self._estimate_errors)
        self._out.append(
            CallUpdate(
                {
                    "status": "completed",
                    "end_reason": str(reason),
                    "responses": self.responses_seen,
                    "ai_audio_ms": ai_audio_ms,
                    "link_rtt_p50_ms": link.rtt_p50_ms,
                    "link_rtt_p95_ms": link.rtt_p95_ms,
                    "link_jitter_ms": link.jitter_ms,
                    "link_samples": link.samples,
                    "estimate_error_p95_ms": (
                        errors[int(0.95 * (len(errors) - 1))] if errors else None
                    ),
                },
                ended_at=now,
            )
        )
        self._out.append(
            Log(
                logging.INFO,
                "call ended: reason=%s responses=%d ai_audio_ms=%d",
                (str(reason), self.responses_seen, ai_audio_ms),
            )
        )
        self._out.append(EndOfCall(reason))


def _turn_record(turn: Turn, now: float) -> Record:
    details = {"seq": turn.seq, "role": turn.role, "item_id": turn.item_id, "text": turn.text}
    return Record(RecordKind.CONVERSATION_TURN, now, details=details)
