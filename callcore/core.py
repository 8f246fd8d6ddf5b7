"""One call's decisions, sans-IO: events and `now` in; messages, records and the end out.

`CallCore` is to a call what `playout.PlayoutTracker` is to its audio, and
what aioquic's `QuicConnection` is to a connection: it never reads a clock,
touches a socket or awaits. Its shell (`calls.live.bridge`) feeds it what
arrives with the time it arrived, sends what `pop_output()` returns, in
order, and calls `timer(now)` at `next_timer()`.

The core keeps dispatch, the tick and the barge-in decision; every other
fact has a module of its own: the call's phase (`lifecycle`), the caller's
audio to the model and its replay (`uplink`), the model session's watchdog
and replacements (`session`), truncates awaiting an answer (`truncates`),
the goodbye's drain (`goodbye`), the counters (`counters`), and the Twilio
messages (`protocol.twilio.StreamMessages`).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never

from callcore.asks import ALREADY_ACTIVE, Asks
from callcore.barge_in import (
    barge_in,
    heard_at,
    judge_silent_speech,
    speech_onset,
    verdict_details,
)
from callcore.caller_clock import CallerClock
from callcore.conversation import Conversation, Turn
from callcore.counters import (
    LOGGED_PROTOCOL_ERRORS,
    MAX_DTMF_RECORDS,
    MAX_PROTOCOL_ERRORS,
    CallCounters,
)
from callcore.goodbye import Goodbye, Transfer
from callcore.intervals import PlayoutIntervals
from callcore.keypad import Keypad, keypad_words
from callcore.lifecycle import DRAINING_PHASES, GOODBYE_PHASES, Event, Lifecycle, Phase
from callcore.listening import Listener
from callcore.outputs import (
    CallUpdate,
    EndOfCall,
    Log,
    Output,
    Record,
    ReplaceModel,
    ToModel,
    ToTwilio,
)
from callcore.protocol import realtime as rt
from callcore.protocol.twilio import INBOUND, Media, StreamMessages
from callcore.records import CallState, EndReason, ItemHeard, RecordKind
from callcore.session import QUIET_WORDS, ModelSession, catch_up
from callcore.tools import ToolCalls, ToolResult
from callcore.transcripts import Transcripts
from callcore.truncates import Truncates
from callcore.turns import (
    Act,
    Answer,
    Decided,
    Forget,
    Hold,
    Interrupt,
    Pause,
    Resume,
    TurnPolicy,
    Verdict,
)
from callcore.uplink import Uplink
from callcore.watchdog import Quiet, WatchdogConfig
from playout import BYTES_PER_MS, CancelOutcome, PlayoutConfig, PlayoutSnapshot, PlayoutTracker

# Model events that show it heard the caller's audio (an answer, or their words
# written down). Speech events alone are not enough: a session can detect a turn
# and then go quiet, and the next one must hear the question.
_HEARD_THE_CALLER = (rt.ResponseCreated, rt.AudioDelta, rt.InputTranscribed)
# The phases in which the caller's sounds are judged: the model hears them and the AI
# may hold the turn (a goodbye is cut by an interruption as any answer is).
_JUDGED_PHASES = (Phase.TALKING, Phase.CLOSING, Phase.DRAINING, Phase.LAST_WORDS)


def _recut_line(moved_ms: int, lead_s: float) -> tuple[str, tuple[int, ...]]:
    """The log line of a pause's cut moved when its clear's marks came back."""
    if moved_ms < 0:
        return (
            "[PAUSE] the clear's marks came back: the caller stopped %d ms earlier than the "
            "cut (the player's lead %d ms); that audio is resumed too",
            (-moved_ms, round(lead_s * 1000)),
        )
    return (
        "[PAUSE] the clear's marks came back: it took %d ms longer than the audio, and the "
        "caller heard that much more than the cut; the answer resumes after it",
        (moved_ms,),
    )


@dataclass(frozen=True, slots=True)
class _Held:
    """The answer held for a sound being judged: the caller may hear it until `until`;
    the sound began at `onset` (both on the tracker's clock)."""

    until: float
    onset: float


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
    # Where the model may transfer the caller (`rt.TRANSFER_TOOL`): name -> number.
    transfer_targets: Mapping[str, str] = field(default_factory=dict)
    # While a tool runs: the silence after which the AI says a holding line, and
    # what it is asked to say (`callcore.tools`).
    tool_hold_after_ms: int = 1000
    tool_hold_instructions: str = (
        "In a few words, tell the caller you are still working on it. Do not answer yet."
    )
    # Keypad digits go to the model once the caller pauses this long (`callcore.keypad`).
    keypad_pause_ms: int = 1500
    # How the caller's sounds while the AI has the turn are judged (`callcore.turns`).
    turns: TurnPolicy = field(default_factory=TurnPolicy)
    # False: the greeting is a passage heard whole (a legal notice): the caller's
    # speech does not cut it, and is answered once it has been heard.
    greeting_interruptible: bool = True


class CallCore:
    """The decisions of one bridged call; every input takes `now` (monotonic seconds).

    Inputs must come with non-decreasing `now`. Outputs accumulate until the
    shell pops them; a `BargeIn` (Twilio's clear) is always put first, ahead
    of audio still queued, and that queued audio of the cancelled generation
    is dropped. After `EndOfCall` every input is ignored.
    """

    def __init__(self, config: CoreConfig, started_at: float) -> None:
        self.config = config
        self.life = Lifecycle()
        self.tracker = PlayoutTracker(config.playout)
        self.uplink = Uplink(config.uplink_chunk_ms)
        # When the caller's frames (and the echoes between them) reached us, had we been
        # on time: the evidence is dated by that, not by when a busy loop read it.
        self.caller_clock = CallerClock()
        self.session = ModelSession(config.watchdog, config.max_model_recoveries, started_at)
        self.goodbye = Goodbye()
        self.intervals = PlayoutIntervals()
        self.transcripts = Transcripts()
        self.conversation = Conversation()
        self.conversation.preload(list(config.resumed_turns))
        self.truncates = Truncates()
        self.asks = Asks()
        self.tools = ToolCalls(config.tool_hold_after_ms, config.tool_hold_instructions)
        self.keypad = Keypad(config.keypad_pause_ms)
        self.listener = Listener(config.turns, config.playout.frame_ms)
        # A tool's result waits for the caller's turn to be answered with it.
        self._tool_answer_owed = False
        # The response of a passage that must be heard whole, from its ask until heard.
        self._passage: str | None = None
        self._passage_asked = False
        # Until when the caller may hear the answer while a sound is judged (`Hold`).
        self._held: _Held | None = None
        # The sound ended before what the hold lets the caller hear ran out: the answer
        # goes on from then (`Listener.release_by`), still held till then, so that voice
        # back in the meantime (a pause inside words) finds it held, nothing to clear.
        self._release_at: float | None = None
        # When the caller stopped hearing the answer paused for a sound being judged
        # (tracker clock), and the evidence then (or when it was held, before any pause):
        # what they were kept from hearing.
        self._paused_at: float | None = None
        # A resume asked for while the pause's clear was still out (it waits for its marks:
        # `PlayoutTracker.resuming_by`): when. It is recorded once the answer goes on.
        self._resume_asked: float | None = None
        self._pause_evidence: PlayoutSnapshot | None = None
        # An interruption decided while the pause's clear was still out: the barge-in
        # (truncation to what was heard) waits for its marks, which may move the cut
        # (`PlayoutTracker.settling_by`). The caller's onset; whether their turn's
        # answer waits behind it.
        self._barge_in_waits: tuple[float | None] | None = None
        self._answer_waits = False
        self.counters = CallCounters()
        self.twilio = StreamMessages(config.stream_sid, config.media_message_ms)
        self._caller_speaking = False
        # Answers whose words are settled (what was heard of a cut one): later
        # transcripts of them do not change the conversation.
        self._settled: set[str] = set()
        self._started_at = started_at
        self._out: deque[Output] = deque([Record(RecordKind.STREAM_STARTED, started_at)])

    # --- outputs ---------------------------------------------------------------------------

    def pop_output(self) -> Output | None:
        """The next thing to do, or None when there is nothing (yet)."""
        return self._out.popleft() if self._out else None

    def next_output(self) -> Output | None:
        """What `pop_output` would give next, left in place."""
        return self._out[0] if self._out else None

    @property
    def has_output(self) -> bool:
        """Whether `pop_output` has something to give."""
        return bool(self._out)

    @property
    def ended(self) -> EndReason | None:
        """Why the call ended; None while it goes on."""
        return self.life.end_reason

    def next_timer(self) -> float | None:
        """When to call `timer(now)` next; None: nothing will change without an input.

        Worked out afresh at every ask from what each part waits for (the
        tracker keeps its own between its inputs): nothing to invalidate. It
        is asked after every input, 50 times a second for the caller's audio
        alone, so it is written for speed.
        """
        life = self.life
        phase = life.phase
        if phase is Phase.ENDED:
            return None
        due = self.tracker.next_deadline()
        if phase is Phase.TALKING:
            watched = self.session.watchdog.deadline
            if due is None or watched < due:
                due = watched
        goodbye = self.goodbye
        for at in (
            goodbye.hard_deadline,
            life.handover_by if goodbye.transfer is None else None,
            self.tools.hold_at,
            self.keypad.due,
            self._release_at,
            self.listener.judge.next_timer() if phase in _JUDGED_PHASES else None,
            self.tracker.settle_deadline() if self._barge_in_waits is not None else None,
        ):
            if at is not None and (due is None or at < due):
                due = at
        return due

    def offset_ms(self, at: float) -> int:
        """Milliseconds since the stream started."""
        return round((at - self._started_at) * 1000)

    # --- the model session -----------------------------------------------------------------

    def model_opened(self, now: float, connect_ms: float = 0.0, ahead: bool = False) -> None:
        """The Realtime session is open and configured; the caller's audio may flow.

        `connect_ms` is how long connecting to the model took; `ahead`, whether
        that began at the voice webhook (before the stream started) rather than
        during this set-up.
        """
        if not self.life.move(Event.OPENED):
            return
        details: dict[str, Any] = {
            "setup_ms": self.offset_ms(now),
            "connect_ms": round(connect_ms),
            "opened_ahead": ahead,
        }
        self._out.append(Record(RecordKind.MODEL_SESSION_OPENED, now, details=details))
        self.session.watchdog.reset(now)
        resumed = self.config.resumed_turns
        if resumed:
            self._flush_uplink()
            self._out += [ToModel(rt.message_item(turn.role, turn.text)) for turn in resumed]
            if resumed[-1].role == "user":
                # The caller spoke last: the answer they were waiting for is owed.
                self._ask(None, now)
        elif self.config.greeting_instructions:
            self._flush_uplink()
            self._passage_asked = not self.config.greeting_interruptible
            self._ask(self.config.greeting_instructions, now)

    def model_open_failed(self, error: str, now: float) -> None:
        if self.life.ended:
            return
        self._out.append(Log(logging.ERROR, "could not open the Realtime session: %s", (error,)))
        details = {"code": "connect_failed", "message": error}
        self._out.append(Record(RecordKind.MODEL_ERROR, now, details=details))
        self._finish(EndReason.MODEL_CONNECT_FAILED, now)

    def model_unreadable(self, reason: str, now: float) -> None:
        if not self.life.ended:
            self._out.append(
                Log(logging.WARNING, "unreadable Realtime event skipped: %s", (reason,))
            )

    def model_closed(self, clean: bool, now: float) -> None:
        """The Realtime socket closed while the caller is there: a new session takes over.

        During a goodbye nothing more is needed of the model: what the caller
        hears plays out, then the call ends.
        """
        phase = self.life.phase
        if phase not in (Phase.TALKING, Phase.CLOSING, Phase.DRAINING):
            return  # not open yet, being replaced already, or gone already
        how = "clean" if clean else "abnormal"
        self._out.append(Log(logging.WARNING, "Realtime connection closed (%s)", (how,)))
        message = "closed cleanly" if clean else "closed abnormally"
        details = {"code": "connection_closed", "message": message}
        self._out.append(Record(RecordKind.MODEL_ERROR, now, details=details))
        if phase is Phase.TALKING:
            self._model_fault("connection_closed", self.session.watchdog.answer_owed, now)
            return
        self.life.move(Event.MODEL_LOST)
        if phase is Phase.CLOSING:
            self._out += self.goodbye.start(self.tracker, now, EndReason.MODEL_DISCONNECTED)
        self._pump(now)

    def _model_fault(self, what: str, owed: bool, now: float) -> None:
        """Replace the session (the conversation carried over), or end the call if we can't."""
        # A barge-in waiting for the pause's clear goes now, the old session's to
        # truncate; the answer that waited behind it is the new session's to give.
        owed = owed or self._answer_waits
        self._settle_barge_in(now, wait=False, answer=False)
        session = self.session
        status = self.tracker.playout_status(now)
        attempt = session.fault(owed, now)
        details = {"what": what, "attempt": attempt or session.recoveries + 1, "answer_owed": owed}
        self._out.append(Record(RecordKind.MODEL_FAULT, now, status, details))
        if attempt is None:
            self._out.append(
                Log(
                    logging.ERROR,
                    "model %s and %d replacement sessions did not help; ending the call",
                    (what, session.recoveries),
                )
            )
            self._finish(EndReason.MODEL_UNRESPONSIVE, now)
            return
        self._out.append(
            Log(logging.WARNING, "model %s: opening replacement session %d", (what, attempt))
        )
        self.life.move(Event.FAULT)
        # The sound being judged is the old session's to hear: nothing stays paused for it.
        self._act(self.listener.judge.reset(), now)
        if self._release_at is not None:
            self._release(now)
        self.truncates.forget()
        self.tools.orphan()
        # The old session's answers are over; what of them was sent still plays.
        self.tracker.close_all(now)
        for turn in self.conversation.unsettled("assistant"):
            self._turn_words(turn.item_id, "assistant", self.transcripts.text(turn.item_id), now)
        self.asks.forget()
        self._out.append(ReplaceModel(attempt))
        seed = self.conversation.seed()
        self._out += catch_up(seed, self.uplink.replay(), owed)
        if owed:
            # A call with no words yet is greeted as the first session would have.
            self._ask(None if seed else self.config.greeting_instructions or None, now)
        self._pump(now)

    def model_replaced(self, now: float, connect_ms: float = 0.0) -> None:
        """The replacement session is open, configured, and has the conversation."""
        if not self.life.move(Event.REPLACED):
            return
        session = self.session
        details = {
            "attempt": session.recoveries,
            "connect_ms": round(connect_ms),
            "turns": len(self.conversation.seed()),
            "answer_requested": session.answer_owed,
        }
        self._out.append(Record(RecordKind.MODEL_RECOVERED, now, details=details))
        self._out.append(
            Log(logging.INFO, "replacement model session %d open", (details["attempt"],))
        )
        session.replaced(now)

    def model_replace_failed(self, error: str, now: float) -> None:
        if self.life.phase is not Phase.RECOVERING:
            return
        details = {"code": "connect_failed", "message": error}
        self._out.append(Record(RecordKind.MODEL_ERROR, now, details=details))
        self._model_fault("replacement_failed", self.session.answer_owed, now)

    def _turn_words(self, item_id: str, role: str, text: str, now: float) -> None:
        turn = self.conversation.words(item_id, role, text)
        if turn is not None:
            details = {
                "seq": turn.seq,
                "role": turn.role,
                "item_id": turn.item_id,
                "text": turn.text,
            }
            self._out.append(Record(RecordKind.CONVERSATION_TURN, now, details=details))

    # --- what the model says ---------------------------------------------------------------

    def model_event(self, event: rt.ServerEvent, now: float) -> None:
        """One server event, at the time it arrived.

        Nothing more is taken from a session being replaced: its answers are
        over (a late `end_call` of it does not hang up, a late delta is not
        played), and the replacement is told the conversation instead.
        """
        if self.life.phase in (Phase.ENDED, Phase.RECOVERING):
            return
        watchdog = self.session.watchdog
        watchdog.heard(now)
        if self.uplink.unheard and isinstance(event, _HEARD_THE_CALLER):
            self.uplink.model_heard()
        match event:
            case rt.AudioDelta():
                self._audio_delta(event, now)
            case rt.SpeechStarted():
                self._caller_speaking = True
                self.tools.caller_spoke()
                self.conversation.begin(event.item_id, "user")
                if not self.asks.in_flight:
                    watchdog.caller_speaking()  # an answer asked for is still awaited
                self._speech_started(event, now)
            case rt.ResponseCreated():
                watchdog.response_started(event.response_id, now)
                self._response_created(event, now)
            case rt.AudioDone():
                watchdog.activity(event.response_id, now)
                self.tracker.audio_done(event.response_id, event.item_id, now)
                self._pump(now)
            case rt.ResponseDone():
                self._response_done(event, now)
            case rt.FunctionCallDone():
                watchdog.activity(event.response_id, now)
                self._function_call(event, now)
            case rt.SpeechStopped():
                self._caller_speaking = False
                self._out.append(
                    Record(
                        RecordKind.SPEECH_STOPPED,
                        now,
                        self.tracker.playout_status(now),
                        {"audio_end_ms": event.audio_end_ms, "item_id": event.item_id},
                    )
                )
                self._act(self.listener.judge.speech_stopped(event.item_id, now), now)
            case rt.ItemTruncated():
                self.truncates.truncated(event.item_id, event.audio_end_ms)
                details = {"item_id": event.item_id, "audio_end_ms": event.audio_end_ms}
                self._out.append(Record(RecordKind.TRUNCATED, now, details=details))
            case rt.ServerError():
                self._error(event, now)
            case rt.SessionCreated():
                if event.session_id:
                    self._out.append(CallUpdate({"model_session_id": event.session_id[:64]}))
            case rt.TranscriptDelta():
                watchdog.activity(event.response_id, now)
                audio_ms = self.tracker.item_audio_ms(event.item_id)
                self.transcripts.delta(event.item_id, event.delta, audio_ms)
            case rt.TranscriptDone():
                self.transcripts.done(event.item_id, event.transcript)
                if event.item_id not in self._settled and self._may_have_been_heard(event):
                    self._turn_words(event.item_id, "assistant", event.transcript, now)
            case rt.InputTranscribed():
                if self.listener.words(event.item_id, event.transcript):
                    self._turn_words(event.item_id, "user", event.transcript, now)
                judged = self.listener.judge.transcript(
                    event.item_id, event.transcript, now, ai_turn=self._ai_turn(now)
                )
                self._act(judged, now)
            case rt.Ignored():
                self._out.append(Log(logging.DEBUG, "Realtime event ignored: %s", (event.type,)))
            case rt.ItemDeleted():
                pass
            case _:
                assert_never(event)

    def _audio_delta(self, event: rt.AudioDelta, now: float) -> None:
        if not event.valid:
            self._out.append(Log(logging.WARNING, "audio delta with bad base64 skipped"))
            return
        self.session.watchdog.activity(event.response_id, now)
        if self.tracker.audio_delta(event.response_id, event.item_id, event.audio, now):
            self.conversation.begin(event.item_id, "assistant")
            self._pump(now)

    def _ask(self, instructions: str | None, now: float, wait: bool = False) -> None:
        """Ask the model for an answer (`callcore.asks`: never while one is active)."""
        self._asked(self.asks.ask(instructions, busy=self.tracker.generating(), wait=wait), now)

    def _asked(self, asked: list[ToModel], now: float) -> None:
        if asked:
            self._out += asked
            self.session.watchdog.response_due(now)

    def _response_created(self, event: rt.ResponseCreated, now: float) -> None:
        self.asks.created()
        if self._passage_asked:
            self._passage_asked = False
            self._passage = event.response_id
        generation = self.tracker.response_started(event.response_id, now)
        self.counters.responses += 1
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
        self.session.watchdog.response_done(event.response_id, now)
        if event.status == "completed":
            self.session.working()
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
        if event.status != "completed" or not tracker.is_live_response(event.response_id):
            self._forget_unheard(event, now)
        self._forget_late_audio(event.response_id)
        for call_id in event.end_call_ids:
            self._end_call_asked(call_id, event.response_id, now)
        for call in event.function_calls:
            if call.name != rt.END_CALL_TOOL:
                self._function_call(call, now)
        if self.life.phase is Phase.CLOSING and not tracker.generating():
            self.life.move(Event.DRAIN)
            self._out += self.goodbye.start(tracker, now)
        elif self.life.phase is Phase.TALKING:
            self._asked(self.asks.idle(tracker.generating()), now)
        self._pump(now)

    def _may_have_been_heard(self, event: rt.TranscriptDone) -> bool:
        """Whether an item's words may have reached the caller: only an item with audio.

        An item of a cut answer that played none, or one announced with no audio at
        all, was never said.
        """
        return self.tracker.item_audio_ms(event.item_id) > 0

    def _forget_unheard(self, event: rt.ResponseDone, now: float) -> None:
        """An answer that was cut, or ended short, is done: its items the caller never
        heard a word of (announced, or arriving, after the barge-in's verdict) go from
        the model's memory too.

        Newer models put several audio items in one answer: a barge-in in the first,
        with the second still being generated, must not leave the second in the
        conversation as if it had been said.
        """
        tracker = self.tracker
        unheard = [
            item_id
            for item_id in event.message_item_ids
            if item_id not in self._settled and tracker.item_audio_ms(item_id) == 0
        ]
        if not unheard:
            return
        self._out += self._delete_unheard(unheard)
        details = {"response_id": event.response_id, "item_ids": unheard}
        self._out.append(Record(RecordKind.UNHEARD_DELETED, now, details=details))

    def _forget_late_audio(self, response_id: str) -> None:
        """Audio of an item that came after the answer's next item began was not played:
        the model's memory of the item ends where the caller's hearing of it did."""
        for item_id, played_ms in self.tracker.cut_short(response_id):
            if item_id in self._settled or played_ms == 0:
                continue
            self._out.append(self.truncates.send(item_id, played_ms))
            self._out.append(
                Log(
                    logging.WARNING,
                    "audio of %s came after the next item began; not played, truncated at %d ms",
                    (item_id, played_ms),
                )
            )

    def _delete_unheard(self, item_ids: Sequence[str]) -> list[ToModel]:
        """Items the caller heard nothing of leave our conversation and the model's."""
        for item_id in item_ids:
            self._settled.add(item_id)
            self.conversation.forget(item_id)
        return [ToModel(rt.item_delete(item_id)) for item_id in item_ids]

    # --- the model's function calls ------------------------------------------------------------

    def _function_call(self, call: rt.FunctionCallDone, now: float) -> None:
        """A complete function call, from either event that says so: acted on once.

        A call of an answer the caller cut off (a barge-in cancelled it, or
        server VAD did as the caller began to speak while it was being made) is
        not acted on: the caller never heard the AI say it would.
        """
        if call.name == rt.END_CALL_TOOL:
            self._end_call_asked(call.call_id, call.response_id, now)
            return
        if not self.tools.take(call.call_id):
            return
        tracker = self.tracker
        live = self._live_response(call.response_id)
        status = tracker.playout_status(now)
        if not live:
            self._out += self.tools.cut_off(call, now, status)
        elif call.name == rt.TRANSFER_TOOL:
            self._transfer_asked(call, now, status)
        else:
            self._out.append(self.tools.asked(call, now))

    def _live_response(self, response_id: str) -> bool:
        """Whether the response is not cut off: neither cancelled nor of an answer the
        caller interrupted (a barge-in waiting for the pause's clear is one)."""
        return self._barge_in_waits is None and self.tracker.is_live_response(response_id)

    def tool_finished(self, result: ToolResult, now: float) -> None:
        """A tool's result (the shell ran it): its output for the model, and an answer.

        The answer is asked for once the last tool under way returned, unless
        the caller speaks (server VAD answers their turn, with the result in the
        conversation) or a goodbye is under way; `response.create` goes only
        when no response is active nor due from server VAD: it waits for that
        one to end (an interruption's answer was made without the result). A
        call of a session since replaced is told to the new one, with its
        result, as a call and its output.
        """
        tools = self.tools
        if self.life.ended or not tools.is_running(result.call_id):
            return
        answer = not (
            tools.others_running(result.call_id)
            or self.life.phase not in (Phase.TALKING, Phase.RECOVERING)
            or self._caller_speaking
        )
        started = result.started_at if result.started_at is not None else now
        status = self.tracker.playout_status(now)
        self._out += tools.finished(result, now, status, self.offset_ms(started), answer)
        if answer:
            self._answer(now)
        elif self._caller_speaking:
            # Their turn's answer will have the result; if their sound is judged not a
            # turn (a backchannel), the result is answered when it is.
            self._tool_answer_owed = True
        self._pump(now)

    def _answer(self, now: float) -> None:
        """Ask for the answer the caller is owed, once no response is active or due (and
        after a barge-in's truncation that waits for the pause's clear)."""
        if self._barge_in_waits is not None:
            self._answer_waits = True
            return
        busy = self.tracker.generating() or self.session.watchdog.answer_owed
        self._asked(self.asks.ask(None, busy=busy, wait=True), now)

    def _transfer_asked(self, call: rt.FunctionCallDone, now: float, status: str) -> None:
        """The model called the transfer tool: a goodbye that ends in `<Dial>`."""
        target = _argument(call.arguments, "target")
        number = self.config.transfer_targets.get(target)
        if number is None:
            names = ", ".join(self.config.transfer_targets) or "none"
            error = f"unknown transfer target {target!r}; the targets are: {names}"
            self._out += self.tools.refused(call, {"target": target}, error, now, status)
            self._answer(now)
            return
        out = self.goodbye.requested(call.call_id, True, now, status, Transfer(target, number))
        if out and self.life.move(Event.GOODBYE_ASKED):
            self._out.append(Log(logging.INFO, "model asked to transfer the call to %s", (target,)))
        self._out += out

    def _end_call_asked(self, call_id: str, response_id: str, now: float) -> None:
        """The model called end_call (from either event that says so)."""
        tracker = self.tracker
        live = self._live_response(response_id)
        out = self.goodbye.requested(call_id, live, now, tracker.playout_status(now))
        if out and self.life.move(Event.GOODBYE_ASKED):
            self._out.append(Log(logging.INFO, "model asked to end the call"))
        self._out += out

    def _error(self, event: rt.ServerError, now: float) -> None:
        refusal = self.truncates.refused(event, now)
        if refusal:
            self._out += refusal  # logged there, once, with what was done about it
        elif event.code == "response_cancel_not_active":
            # The server's own interrupt_response won the race: nothing to cancel.
            self._out.append(Log(logging.INFO, "response.cancel found no active response"))
        elif event.code == ALREADY_ACTIVE:
            # An answer asked for as server VAD started one: that one answers.
            self.asks.refused()
            self._out.append(Log(logging.INFO, "response.create came while one was active"))
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

    # --- barge-in --------------------------------------------------------------------------

    def _speech_started(self, event: rt.SpeechStarted, now: float) -> None:
        tracker = self.tracker
        onset = speech_onset(
            event, self.config.prefix_padding_ms, self.uplink.clock, tracker.link.rtt_s
        )
        ai_turn = self._ai_turn(now)
        if not ai_turn:
            self._out += judge_silent_speech(tracker, onset, now, self.offset_ms)
        judged = self.listener.judge.speech_started(
            event.item_id, now, ai_turn=ai_turn, onset=onset, interruptible=self._interruptible(now)
        )
        self._act(judged, now)

    def _ai_turn(self, now: float) -> bool:
        """The AI holds the turn: heard, held for the caller, answering, or asked to."""
        tracker = self.tracker
        return (
            tracker.held or tracker.generating() or self.asks.in_flight or tracker.is_speaking(now)
        )

    def _interruptible(self, now: float) -> bool:
        """Whether the caller may cut what the AI says now (not a passage heard whole)."""
        passage = self._passage
        if passage is None:
            return True
        tracker = self.tracker
        if passage in tracker.generating_ids() or tracker.is_speaking(now) or tracker.held:
            return False
        self._passage = None
        return True

    def _act(self, acts: Sequence[Act], now: float) -> None:
        """Carry out what the judge of the caller's sounds decided (`callcore.turns`)."""
        onset: float | None = None
        for act in acts:
            match act:
                case Decided():
                    onset = act.onset
                    self._out += self._verdict(act, now)
                case Hold():
                    self._hold(act.until, now)
                case Pause():
                    self._pause(now)
                case Resume():
                    self._resume(now)
                case Interrupt(deferred=False):
                    if not self._ai_turn(now) or self._barge_in_waits is not None:
                        pass
                    elif self.tracker.cut_settled(now):
                        self._barge_in(now, onset)
                    else:
                        # The pause's clear has not come back yet: it may say the caller
                        # stopped elsewhere than the cut. Nothing plays meanwhile (a
                        # resume still waiting for it never goes on).
                        self._barge_in_waits = (onset,)
                        if self.tracker.resuming_by() is not None:
                            self._call_off_resume(now)
                case Interrupt():
                    # A passage heard whole: the caller's turn is answered after it.
                    self._out.append(Log(logging.INFO, "caller spoke during a passage; it goes on"))
                case Answer():
                    words = self.listener.answered(act.item_id)
                    if words is not None:
                        self._turn_words(act.item_id, "user", words, now)
                    self._tool_answer_owed = False  # this answer has the result too
                    if self._barge_in_waits is not None:
                        self._answer_waits = True  # after the truncation
                    else:
                        self._ask(None, now, wait=True)
                case Forget():
                    self.listener.forgotten(act.item_id)
                    self.conversation.forget(act.item_id)
                    self._out.append(ToModel(rt.item_delete(act.item_id)))
                case _:
                    assert_never(act)
        if self._tool_answer_owed and not (
            self._caller_speaking or self.listener.judge.deciding or self.tools.running
        ):
            # The caller's sound was no turn: the tool's result is answered now.
            self._tool_answer_owed = False
            self._answer(now)

    def _verdict(self, decided: Decided, now: float) -> list[Output]:
        details = verdict_details(decided, self.offset_ms)
        if decided.verdict is Verdict.INTERRUPTION and decided.interruptible:
            # Paused: the caller stopped hearing the AI then; else with the barge-in, now.
            stopped = now if self._paused_at is None else self._paused_at
            details["stopped_hearing_ms"] = round((stopped - decided.onset) * 1000)
        return [
            Log(
                logging.INFO,
                "[TURN] %s (%s) decided %d ms after the caller began",
                (str(decided.verdict), str(decided.decided_by), decided.decision_ms),
            ),
            Record(RecordKind.TURN_VERDICT, now, self.tracker.playout_status(now), details),
        ]

    def sends_due(self, now: float) -> bool:
        """Whether `timer(now)` would, or may, send Twilio audio or a mark (frames due; a
        resume or a barge-in waiting for a pause's clear): the shell runs it where what
        it sends leaves at once (each frame is dated by when it is sent, and what the
        caller heard by that)."""
        tracker = self.tracker
        return (
            tracker.sends_due(now)
            or tracker.resuming_by() is not None
            or self._barge_in_waits is not None
            or (self._release_at is not None and now >= self._release_at)
        )

    @property
    def judging_sound(self) -> bool:
        """A sound of the caller's is being judged: the next timer may pause or cut the
        answer (a `clear`, dated by the `now` it is given: the shell gives it the time the
        clear can leave)."""
        return self.listener.judge.deciding

    def _hold(self, target: float, now: float) -> None:
        """A sound began: send nothing the caller would hear after its stop target.

        Only when Twilio has no more than plays by then: otherwise the answer flows
        on and the pause clears Twilio ahead of the target, as if there were no
        hold. A hold that echoes move past its `until` is cleared by the pause too.
        """
        tracker = self.tracker
        if tracker.resuming_by() is not None:
            # Paused, its resume waiting for the clear's marks: the caller makes another
            # sound, so the answer stays paused (it would go on into the sound, to be
            # cleared again at its target); it resumes when this one ends.
            self._call_off_resume(now)
            return
        onset = target - self.config.turns.stop_target_ms / 1000
        if self._release_at is not None:
            # Voice back before the held answer went on: the same sound finds it held where
            # it was; a new one (after a click) holds it to its own target.
            self._release_at = None
            held = self._held
            if held is not None and onset <= held.onset + 1e-9:
                return
            self._pause_evidence = self._held = None
            tracker.resume(now)
        until = self.listener.hold_until(target, tracker, dated=self.caller_clock.dating)
        ends = tracker.plays_until(now)
        if tracker.held or (ends is not None and ends > until + 1e-9):
            return
        self._held = _Held(until, onset)
        if self._pause_evidence is None:
            # The evidence before the hold takes the audio held here off the deadline.
            self._pause_evidence = tracker.snapshot(now)
        tracker.hold(now, until)
        self._pump(now)

    def _pause(self, now: float) -> None:
        """Stop what the caller hears while their sound is judged; the rest is kept.

        Held, and what Twilio has still ends by the hold's `until` (echoes may have
        moved it on since the hold), the answer simply runs out there: nothing is
        cleared, nothing sent again. Already paused (its resume, waiting for the
        clear's marks, called off by a new sound), it stays paused. Otherwise
        (no hold, or one the player fell behind), Twilio is cleared now.
        """
        tracker = self.tracker
        if tracker.resuming_by() is not None:
            self._call_off_resume(now)
            return
        if tracker.paused:
            return  # already (its resume called off by this sound): the silence goes on
        held = self._held
        ends = tracker.plays_until(now)
        if held is not None and tracker.held and (ends is None or ends <= held.until + 1e-9):
            if ends is None:
                # It ran out already (by the hold's `until`, or where the answer's audio
                # ended): the caller stopped hearing it then, or at the sound's onset if
                # nothing was playing by then (the end of an answer long over).
                ran_out = tracker.played_until()
                ends = now if ran_out is None else min(max(ran_out, held.onset), now)
            self._paused_at = ends
            # What the caller was kept from hearing: the rest of the answer, held here too.
            self._pause_evidence = tracker.snapshot(now, held_back=True)
            item_id = tracker.playing_item(now)
            details: dict[str, object] = {
                "item_id": item_id,
                "heard_ms": 0 if item_id is None else tracker.heard_ms(item_id, now),
                "requeued_ms": 0,
                "cleared": False,
                # The caller hears the held answer this much longer, to its end (< 0: it
                # ran out that long before).
                "stop_in_ms": round((self._paused_at - now) * 1000),
            }
            status = tracker.playout_status(now)
            self._out.append(Record(RecordKind.ANSWER_PAUSED, now, status, details))
            return
        outcome = tracker.pause(now)
        self._paused_at = now
        self._pause_evidence = outcome.evidence
        self._drop_unsent(None)
        # The clear leaves first (every millisecond before it, the caller hears the AI),
        # behind only the mark that ends what was sent, when one is due: its echo says
        # when the caller stopped hearing.
        self._out.appendleft(ToTwilio(self.twilio.clear()))
        if (mark := outcome.closing_mark) is not None:
            self._out.appendleft(ToTwilio(self.twilio.mark(mark.name)))
        details = {
            "item_id": outcome.item_id,
            "heard_ms": outcome.heard_ms,
            "requeued_ms": outcome.requeued_ms,
            "cleared": True,
            "stop_in_ms": 0,
        }
        status = tracker.playout_status(now)
        self._out.append(Record(RecordKind.ANSWER_PAUSED, now, status, details))

    def _resume(self, now: float) -> None:
        """The sound was not an interruption: the answer goes on from where it was heard
        (held: from the first byte not sent; paused: from the byte the caller last heard).

        Held, keeping some of the answer back, with a while yet before what Twilio has
        runs out, it stays held until Twilio must have more (`Listener.release_by`): the
        caller hears the same, and voice back meanwhile (the sound was a pause inside
        their words) finds it still held, with nothing to clear.
        """
        tracker = self.tracker
        held = self._held
        if held is not None and tracker.held and not tracker.paused and tracker.holds_back():
            release_at = self.listener.release_by(held.until, tracker)
            if release_at > now:
                self._release_at = release_at
                return
        self._release(now)

    def _release(self, now: float) -> None:
        """The answer held or paused for a sound goes on."""
        self._release_at = None
        tracker = self.tracker
        tracker.resume(now)
        if tracker.resuming_by() is not None:
            # It waits for the pause's clear to come back (its marks may move the cut):
            # recorded when it goes on (`_pump`), unless a new sound calls it off.
            if self._resume_asked is None:
                self._resume_asked = now
        else:
            self._went_on(now)
        self._pump(now)

    def _call_off_resume(self, now: float) -> None:
        """A resume waiting for the pause's clear never goes on: the answer stays paused
        (the clear's marks may still move its cut), the caller's silence going on from
        the same pause."""
        self.tracker.stay_paused(now)
        self._resume_asked = None

    def _went_on(self, now: float) -> None:
        """The answer goes on: the silence the caller heard since it paused (none if the
        held audio had not run out yet), and how much of it the resume waited for the
        pause's clear's marks."""
        paused_at, self._paused_at = self._paused_at, None
        asked, self._resume_asked = self._resume_asked, None
        self._pause_evidence = self._held = None
        if paused_at is None:
            return
        details: dict[str, object] = {"gap_ms": max(0, round((now - paused_at) * 1000))}
        if asked is not None:
            details["waits_ms"] = round((now - asked) * 1000)
        status = self.tracker.playout_status(now)
        self._out.append(Record(RecordKind.ANSWER_RESUMED, now, status, details))

    def _settle_barge_in(self, now: float, wait: bool = True, answer: bool = True) -> None:
        """A barge-in that waited for the pause's clear goes ahead once the cut is settled
        (the clear's marks came back, or are overdue; at once, `wait` False); then the
        answer that waited behind it (unless `answer` is False: the caller of this owes it)."""
        waits = self._barge_in_waits
        if waits is None or (wait and not self.tracker.cut_settled(now)):
            return
        self._barge_in_waits = None
        self._barge_in(now, waits[0])
        answer_waits, self._answer_waits = self._answer_waits, False
        if answer_waits and answer:
            self._ask(None, now, wait=True)

    def _barge_in(self, now: float, onset: float | None) -> None:
        """The caller has the turn: clear what plays, cancel what is generating, truncate
        the model's memory to what the caller heard, delete what they never heard."""
        tracker = self.tracker
        stopped, self._pause_evidence = self._pause_evidence, None
        self._paused_at = self._held = self._resume_asked = self._release_at = None
        # The evidence at the onset, before the cancel changes the estimate.
        heard_at_onset_ms = heard_at(tracker, onset)
        response_cancelled = tracker.generating()
        outcome = tracker.cancel(now)
        truncate = outcome.truncate
        heard_text, cut_text, items = self._cut_words(outcome, now)
        self._drop_unsent(outcome.cancelled_generation)
        # The clear leaves first: every millisecond before it, the caller hears the AI.
        self._out.appendleft(
            barge_in(
                self.twilio.clear(),
                outcome,
                at=now,
                onset=onset,
                heard_at_onset_ms=heard_at_onset_ms,
                response_cancelled=response_cancelled,
                heard_text=heard_text,
                cut_text=cut_text,
                items=items,
                frame_ms=self.config.playout.frame_ms,
                offset_ms=self.offset_ms,
                stopped=stopped,
            )
        )
        self._flush_uplink()
        if response_cancelled:
            self._out.append(ToModel(rt.response_cancel()))
        if truncate is not None:
            self._out.append(self.truncates.send(truncate.item_id, truncate.audio_end_ms))
        self._out += self._delete_unheard(outcome.delete_item_ids)
        status = tracker.playout_status(now)
        self._out += self.intervals.close(now, status, self.offset_ms(now), interrupted=True)
        if self.life.phase in GOODBYE_PHASES:
            self.life.move(Event.BARGE_IN)
            self._out += self.goodbye.cancel(now, "barge_in")

    def _cut_words(
        self, outcome: CancelOutcome, now: float
    ) -> tuple[str, str, tuple[ItemHeard, ...]]:
        """The words of the answers a barge-in cut, and what became of each of their items.

        Heard: the items heard whole, then the heard part of the truncated one.
        Cut: the rest of it, then the items never heard (gone from the
        conversation). The truncated item's words are settled at what was heard.
        """
        transcripts = self.transcripts
        items: list[ItemHeard] = []
        heard: list[str] = []
        cut: list[str] = []
        for item_id in outcome.kept_item_ids:
            heard.append(transcripts.text(item_id))
            items.append(ItemHeard(item_id, "kept", self.tracker.item_audio_ms(item_id), heard[-1]))
        truncate = outcome.truncate
        if truncate is not None:
            item_id = truncate.item_id
            heard_part, cut_part = transcripts.split(item_id, truncate.audio_end_ms)
            heard.append(heard_part)
            cut.append(cut_part)
            self._settled.add(item_id)
            self._turn_words(item_id, "assistant", heard_part, now)
            items.append(ItemHeard(item_id, "truncated", truncate.audio_end_ms, heard_part))
        for item_id in outcome.delete_item_ids:
            cut.append(transcripts.text(item_id))
            items.append(ItemHeard(item_id, "deleted", 0))
        return _words(heard), _words(cut), tuple(items)

    def _drop_unsent(self, generation: int | None) -> None:
        """Audio and marks of a cancelled generation (None: of any, a pause took them back
        to send again) still queued here never leave."""
        self._out = deque(
            out
            for out in self._out
            if not (
                isinstance(out, ToTwilio)
                and out.generation is not None
                and (generation is None or out.generation <= generation)
            )
        )

    # --- the caller ------------------------------------------------------------------------

    def caller_audio(self, media: Media, now: float) -> None:
        """A media frame from Twilio: forwarded to the model in order (`callcore.uplink`)."""
        if self.life.phase is Phase.ENDED:
            return
        if not media.audio or media.track != INBOUND:
            # Nothing to hear; or not the caller's (a fork's `outbound` track is what
            # the caller hears): nothing to forward to the model.
            self.counters.empty_frames += 1
            return
        clock = self.caller_clock
        tracker = self.tracker
        arrived = clock.frame(media.timestamp_ms, len(media.audio) / 8000, now)
        if change := clock.offset_change():
            # Echoes it dated were read late by that much more (or less): so were the
            # link's round trips, measured from them.
            tracker.link.redate(change)
        tracker.twilio_read(arrived, dated=clock.dating)
        if (
            self._barge_in_waits is not None or tracker.resuming_by() is not None
        ) and tracker.cut_settled(now):
            # The pause's clear's marks are overdue by Twilio's clock: what waited goes on.
            self._settle_barge_in(now)
            self._pump(now)
        append = self.uplink.audio(media, arrived)
        if append is not None:
            self._out.append(ToModel(append))
        if self.life.phase in _JUDGED_PHASES:
            judged = self.listener.frame(
                media.audio,
                self.tracker,
                arrived,
                now,
                ai_turn=self._ai_turn(now),
                interruptible=self._interruptible(now),
            )
            if judged:
                self._act(judged, now)

    def _flush_uplink(self) -> None:
        """Caller audio held for the next append goes now (before any other client event)."""
        append = self.uplink.flush()
        if append is not None:
            self._out.append(ToModel(append))

    def mark_echoed(self, name: str, now: float) -> None:
        if self.life.ended:
            return
        tracker = self.tracker
        recut = tracker.recut_bytes
        clock = self.caller_clock
        echo = tracker.mark_echoed(name, now, clock.dated(now) if clock.dating else None)
        if moved := tracker.recut_bytes - recut:
            self._out.append(Log(logging.INFO, *_recut_line(round(moved / 8), tracker.link.lead_s)))
        self._settle_barge_in(now)
        if echo.accepted:
            self.intervals.note_echo(echo)
            self.counters.estimate_errors_ms.append(abs(echo.estimate_error_ms))
        self._pump(now)

    def caller_dtmf(self, digit: str, now: float) -> None:
        if self.life.ended:
            return
        entry = self.keypad.pressed(digit, now)
        if entry is not None:
            self._keypad_entry(entry, now)
        counters = self.counters
        counters.dtmf_digits += 1
        if counters.dtmf_digits > MAX_DTMF_RECORDS:
            if counters.dtmf_digits == MAX_DTMF_RECORDS + 1:
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

    def _keypad_entry(self, digits: str, now: float) -> None:
        """The caller's keypad entry is the caller's input: told to the model, answered."""
        details: dict[str, Any] = {"digits": digits}
        if self.life.phase is Phase.TALKING:
            self._flush_uplink()
            self._out.append(ToModel(rt.message_item("user", keypad_words(digits))))
            self._answer(now)
        else:
            details["ignored"] = self.life.phase.value  # nothing to tell (yet, or any more)
        status = self.tracker.playout_status(now)
        self._out.append(Record(RecordKind.KEYPAD_INPUT, now, status, details))

    def protocol_error(self, reason: str, now: float) -> None:
        """A malformed Twilio message, skipped; too many of them end the call."""
        if self.life.ended:
            return
        counters = self.counters
        counters.protocol_errors += 1
        if counters.protocol_errors <= LOGGED_PROTOCOL_ERRORS:
            self._out.append(Log(logging.WARNING, "twilio message skipped: %s", (reason,)))
            self._out.append(Record(RecordKind.PROTOCOL_ERROR, now, details={"reason": reason}))
        if counters.protocol_errors >= MAX_PROTOCOL_ERRORS:
            self._out.append(Log(logging.ERROR, "too many malformed messages; ending the call"))
            self._finish(EndReason.PROTOCOL_ERRORS, now)

    # --- time and the end ------------------------------------------------------------------

    def timer(self, now: float) -> None:
        """`next_timer()` has come (calling it early or late is harmless)."""
        if self.life.ended:
            return
        if self.life.phase is Phase.TALKING and self._model_quiet(now):
            return
        self._settle_barge_in(now)
        if self.life.phase in _JUDGED_PHASES:
            self._act(self.listener.judge.timer(now, ai_turn=self._ai_turn(now)), now)
        if self._release_at is not None and now >= self._release_at:
            self._release(now)
        self._pump(now)

    def _model_quiet(self, now: float) -> bool:
        """Probe a model that has said nothing for a while; a fault if it stays quiet."""
        session = self.session
        probe = session.probe(now)
        if probe is not None:
            self._out.append(probe)
        owed = session.watchdog.answer_owed
        quiet = session.watchdog.expired(now)
        if quiet is None:
            return False
        self._out.append(Log(logging.WARNING, "model %s", (QUIET_WORDS[quiet],)))
        self._model_fault(str(quiet), owed or quiet is not Quiet.UNRESPONSIVE, now)
        return True

    def end(self, reason: EndReason, now: float) -> None:
        """End the call now (the caller left, a fault, an operator): records, then `EndOfCall`."""
        if not self.life.ended:
            self._finish(reason, now)

    def hand_over(self, now: float, grace_s: float) -> None:
        """The process is stopping: end as `server_shutdown` (handed over by Twilio's
        `<Connect action>`) at the next pause, or after `grace_s` at the latest."""
        if self.life.hand_over_by(now + grace_s):
            self._pump(now)

    def _pump(self, now: float) -> None:
        """Frames and marks due now; then whether the AI stopped being heard, or the drain ended."""
        tracker = self.tracker
        out = tracker.poll(now)
        if self._resume_asked is not None and not tracker.held:
            self._went_on(now)  # the resume that waited for the pause's clear
        if out:
            status = tracker.playout_status(now)
            self._out += self.intervals.frames_sent(out, now, status)
            self._out += [ToTwilio(text, gen) for text, gen in self.twilio.playout(out)]
        if self.intervals.open and not tracker.is_speaking(now):
            until_end = tracker.deadline_offset_ms(now) or 0
            status = tracker.playout_status(now)
            end_offset = self.offset_ms(now) + until_end
            self._out += self.intervals.close(now, status, end_offset, interrupted=False)
        life = self.life
        if (entry := self.keypad.paused(now)) is not None:
            self._keypad_entry(entry, now)
        if self.tools.running:
            self._hold_line(now)
        if life.phase in DRAINING_PHASES:
            records, reason = self.goodbye.finished(tracker, now)
            self._out += records
            if reason is not None:
                self._finish(reason, now)
                return
        handover_by = life.handover_by
        # A transfer under way ends as one (Twilio dials; nothing of this process is
        # needed): the caller who heard "putting you through" never gets the AI back.
        transferring = self.goodbye.transfer is not None
        if (
            handover_by is not None
            and not transferring
            and (now >= handover_by or self._at_pause(now))
        ):
            self._out.append(
                Log(
                    logging.INFO,
                    "handing the call over (%s)",
                    ("at a pause" if now < handover_by else "grace period over",),
                )
            )
            self._finish(EndReason.SERVER_SHUTDOWN, now)

    def _hold_line(self, now: float) -> None:
        """While a tool runs: a holding line once the caller has heard nothing for a while."""
        tracker = self.tracker
        tools = self.tools
        busy = (
            self.life.phase is not Phase.TALKING
            or tracker.is_speaking(now)
            or tracker.generating()
            or self._caller_speaking
            or self.asks.in_flight
            or self.session.watchdog.answer_owed
        )
        # The silence began when the last audio was heard (the estimate says when),
        # not when the tracker stops allowing for a late one.
        ended_ms = min(0, tracker.deadline_offset_ms(now) or 0)
        tools.heard(now, busy, since=now + ended_ms / 1000)
        record = tools.hold(now, tracker.playout_status(now))
        if record is not None:
            self._out.append(record)
            self._flush_uplink()
            asked = self.asks.ask(tools.hold_instructions, busy=False, wait=False, tools=False)
            self._asked(asked, now)

    def _at_pause(self, now: float) -> bool:
        """Nobody is saying anything, and nothing is on its way: no goodbye under way or
        session being replaced, the AI neither heard nor generating, the caller not
        speaking, no answer owed, no tool under way (its result is owed)."""
        return not (
            self.life.phase not in (Phase.CONNECTING, Phase.TALKING)
            or self.tracker.is_speaking(now)
            or self.tracker.generating()
            or self._caller_speaking
            or self.session.watchdog.answer_owed
            or self.tools.running
        )

    def _finish(self, reason: EndReason, now: float) -> None:
        self.life.end(reason)
        tracker = self.tracker
        ai_audio_ms = self.intervals.audio_sent_bytes // BYTES_PER_MS
        status = tracker.playout_status(now)
        # Whatever was still playing stops with the stream.
        until_end = min(0, tracker.deadline_offset_ms(now) or 0)
        self._out += self.intervals.close(
            now, status, self.offset_ms(now) + until_end, interrupted=False
        )
        self._out += self.tools.abandoned(now, status, str(reason))
        counters = self.counters
        ended = counters.at_end(str(reason)) | self.caller_clock.lateness().as_details()
        transfer = self.goodbye.transfer if reason is EndReason.TRANSFERRED else None
        target = {"transfer_target": transfer.target} if transfer is not None else {}
        self._out.append(Record(RecordKind.STREAM_ENDED, now, status, {**ended, **target}))
        link = tracker.link.stats()
        self._out.append(
            CallUpdate(
                {
                    **target,
                    "status": str(CallState.COMPLETED),
                    "end_reason": str(reason),
                    "responses": counters.responses,
                    "ai_audio_ms": ai_audio_ms,
                    "link_rtt_p50_ms": link.rtt_p50_ms,
                    "link_rtt_p95_ms": link.rtt_p95_ms,
                    "link_jitter_ms": link.jitter_ms,
                    "link_samples": link.samples,
                    "estimate_error_p95_ms": counters.estimate_error_p95_ms(),
                },
                ended_at=now,
            )
        )
        self._out.append(
            Log(
                logging.INFO,
                "call ended: reason=%s responses=%d ai_audio_ms=%d",
                (str(reason), counters.responses, ai_audio_ms),
            )
        )
        self._out.append(EndOfCall(reason))


def _words(parts: list[str]) -> str:
    return " ".join(part for part in parts if part)


def _argument(arguments: str, key: str) -> str:
    """One string argument of a function call's JSON text ("" if absent or unreadable)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return ""
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, str) else ""
