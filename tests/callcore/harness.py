"""A stepped-clock harness for `CallCore`: a model that scripts events, a Twilio that plays audio.

`CoreRun` does what the asyncio shell does, without sockets or sleeps: it
carries out the core's outputs in order, plays Twilio's part with the
reference player of the playout tests (echoing each mark when the audio
before it has played, returning marks at once on `clear`), and moves time
from one deadline to the next.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from callcore import (
    BargeIn,
    CallCore,
    CallUpdate,
    CoreConfig,
    EndOfCall,
    EndReason,
    Log,
    Record,
    RecordKind,
    ReplaceModel,
    RunTool,
    ToModel,
    ToTwilio,
)
from callcore.protocol import realtime as rt
from callcore.protocol.twilio import Media
from callcore.turns import TurnPolicy
from playout import AudioFrame, PlayoutConfig
from simulators import signals
from tests.playout.harness import ReferencePlayer

STREAM_SID = "MZ" + "1" * 32
EPS = 1e-9
# The old rule, for tests of what a barge-in does: any voice while the AI holds the
# turn interrupts it at once (tests of the judgement itself use the default policy).
INTERRUPT_AT_ONCE = TurnPolicy(interrupt_after_ms=0)


def _media(audio: bytes) -> Media:
    return Media(base64.b64encode(audio).decode(), audio, 0, "inbound")


_SILENCE = _media(b"\xff" * 160)
# The caller's voice (not a tone the AI could have said: the meter tells them apart).
_VOICE_FRAMES = tuple(_media(signals.speech_audio(n * 160, 160, 160 * 400)) for n in range(12, 24))
VOICE = _VOICE_FRAMES[0]


def tone(value: int, ms: int) -> bytes:
    return bytes([value]) * (ms * 8)


@dataclass
class Sent:
    at: float
    message: dict[str, Any]


@dataclass
class CoreRun:
    """One call's core, driven by hand; `now` only moves forward."""

    config: CoreConfig = field(
        default_factory=lambda: CoreConfig(stream_sid=STREAM_SID, turns=INTERRUPT_AT_ONCE)
    )
    link_delay_s: float = 0.0
    # A clear's own way down (None: the audio's).
    clear_delay_s: float | None = None
    now: float = 0.0
    core: CallCore = field(init=False)
    player: ReferencePlayer = field(init=False)
    twilio: list[Sent] = field(default_factory=list)
    model: list[dict[str, Any]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    # Each barge-in as the shell records it: with its reaction, once its clear was sent.
    barge_ins: list[BargeIn] = field(default_factory=list)
    updates: list[CallUpdate] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    ended: EndReason | None = None
    clears: list[float] = field(default_factory=list)
    # Playout generations below this one were cancelled by the last clear sent.
    cleared_below: int = 0
    # (when, attempt) of every model session replacement the core asked for.
    replacements: list[tuple[float, int]] = field(default_factory=list)
    # A live model answers the core's probes (`session.update`) at once.
    answer_probes: bool = True
    probes: list[float] = field(default_factory=list)
    generation_of_frames: list[int] = field(default_factory=list)
    # The tools the core asked the shell to run (`tool_finished` reports their results).
    tools: list[RunTool] = field(default_factory=list)
    _frame_index: int = 0

    def __post_init__(self) -> None:
        self.core = CallCore(self.config, self.now)
        self.player = ReferencePlayer(self.link_delay_s, self.link_delay_s)
        self.core.model_opened(self.now)
        self.settle()

    # --- carrying out outputs ---------------------------------------------------------------

    def settle(self, limit: int | None = None) -> None:
        """Do what the core asked for, in order (as the shell's drain does): everything,
        or only the first `limit` outputs (a shell still busy when the next input comes)."""
        done = 0
        while (limit is None or done < limit) and (out := self.core.pop_output()) is not None:
            done += 1
            match out:
                case ToTwilio():
                    self._to_twilio(out.text, out.generation)
                case BargeIn():
                    self.cleared_below = out.generation
                    self._to_twilio(out.clear)
                    barge_in = out.reacted(self.now)
                    self.barge_ins.append(barge_in)
                    self.logs.append(barge_in.log_line().message % barge_in.log_line().args)
                    self.records.append(
                        Record(
                            RecordKind.BARGE_IN,
                            barge_in.at,
                            barge_in.playout_status,
                            barge_in.log_details(),
                        )
                    )
                case ToModel():
                    event = json.loads(out.text)
                    self.model.append(event)
                    if event["type"] == "session.update":
                        self.probes.append(self.now)
                        if self.answer_probes:
                            self.core.model_event(rt.Ignored("session.updated"), self.now)
                case Record():
                    self.records.append(out)
                case CallUpdate():
                    self.updates.append(out)
                case Log():
                    self.logs.append(out.message % out.args)
                case ReplaceModel():
                    self.replacements.append((self.now, out.attempt))
                case RunTool():
                    self.tools.append(out)
                case EndOfCall():
                    assert self.ended is None, "EndOfCall twice"
                    self.ended = out.reason

    def _to_twilio(self, text: str, generation: int | None = None) -> None:
        message = json.loads(text)
        assert message["streamSid"] == STREAM_SID
        self.twilio.append(Sent(self.now, message))
        event = message["event"]
        if event == "media":
            payload = base64.b64decode(message["media"]["payload"])
            frame = AudioFrame(payload, 0, "", "")
            self.player.receive_frame(self.now, frame)
        elif event == "mark":
            self.player.receive_mark(self.now, message["mark"]["name"])
        elif event == "clear":
            self.clears.append(self.now)
            # The clear reaches the player one way later; the marks it returns come back
            # the other way.
            down = self.player.delay_s if self.clear_delay_s is None else self.clear_delay_s
            reached = self.now + down
            returned = [(reached, name) for name in self.player.clear(reached)]
            self.player.marks += returned
        else:
            raise AssertionError(f"unexpected event to Twilio: {event}")

    # --- time ------------------------------------------------------------------------------

    def step(self, t: float) -> None:
        """Move to `t`, waking at every core timer and mark echo on the way."""
        assert t >= self.now - EPS
        stuck = 0
        while True:
            candidates = [self.core.next_timer(), self.player.next_echo_at()]
            due = [c for c in candidates if c is not None and c <= t]
            if not due:
                break
            moved = min(due) > self.now
            stuck = 0 if moved else stuck + 1
            if stuck > 100:
                raise AssertionError(f"the core asks to be woken at {self.now} again and again")
            self.now = max(self.now, min(due))
            for name in self.player.due_echoes(self.now):
                self.core.mark_echoed(name, self.now)
            self.core.timer(self.now)
            self.settle()
        self.now = max(self.now, t)
        self.core.timer(self.now)
        self.settle()

    # --- the model's side ------------------------------------------------------------------

    def event(self, event: rt.ServerEvent, at: float | None = None) -> None:
        if at is not None:
            self.step(at)
        self.core.model_event(event, self.now)
        self.settle()

    def answer(self, response_id: str, item_id: str, ms: int, *, done: bool = True) -> None:
        """A response whose audio (tone 0x44) arrives at once, optionally completed."""
        self.event(rt.ResponseCreated(response_id))
        self.event(rt.AudioDelta(response_id, item_id, tone(0x44, ms)))
        if done:
            self.event(rt.AudioDone(response_id, item_id))
            self.event(rt.ResponseDone(response_id, "completed", ()))

    def caller_speaks(self, at: float, onset_ms: int | None = None) -> None:
        """The service hears the caller speak at `at`, and their voice reaches us (a frame).

        With the harness's policy (`interrupt_after_ms` 0, the old rule) any voice
        while the AI holds the turn is an interruption, decided on that frame.
        """
        self.step(at)
        self.event(rt.SpeechStarted(onset_ms, "item_user"))
        self.core.caller_audio(VOICE, self.now)
        self.settle()

    def caller_voice(
        self,
        ms: int,
        words: str | None = None,
        item_id: str | None = "item_user",
        *,
        committed: bool = True,
    ) -> None:
        """`ms` of the caller's voice from now, a frame every 20 ms; the service's speech
        events around it (`item_id` None: it hears no speech in it, a noise), and, once
        it commits the item (`committed`), its words (None: no transcript)."""
        for n in range(ms // 20):
            self.core.caller_audio(_VOICE_FRAMES[n % len(_VOICE_FRAMES)], self.now)
            self.settle()
            if n == 8 and item_id is not None:  # the service's VAD takes ~160 ms to be sure
                self.event(rt.SpeechStarted(None, item_id))
            self.step(self.now + 0.02)
        self.caller_audio(200)  # the service's silence, then its commit
        if item_id is None or not committed:
            return
        self.event(rt.SpeechStopped(None, item_id))
        if words is not None:
            self.event(rt.InputTranscribed(item_id, words))

    def caller_sound(self, ms: int) -> None:
        """`ms` of the caller's voice from now, a frame every 20 ms, and nothing else (the
        service's events are the test's own)."""
        for n in range(ms // 20):
            self.core.caller_audio(_VOICE_FRAMES[n % len(_VOICE_FRAMES)], self.now)
            self.settle()
            self.step(self.now + 0.02)

    def caller_audio(self, ms: int) -> None:
        """`ms` of caller audio (silence), one 20 ms frame per 20 ms of time."""
        for _ in range(ms // 20):
            self.core.caller_audio(_SILENCE, self.now)
            self.settle()
            self.step(self.now + 0.02)

    # --- what happened ---------------------------------------------------------------------

    def kinds(self) -> list[RecordKind]:
        return [record.kind for record in self.records]

    def of_kind(self, kind: RecordKind) -> list[Record]:
        return [record for record in self.records if record.kind == kind]

    def model_events(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.model if event["type"] == kind]

    def twilio_events(self, kind: str) -> list[Sent]:
        return [sent for sent in self.twilio if sent.message["event"] == kind]

    def heard_gaps_ms(self) -> list[float]:
        """The silences between what the caller heard (over a ms each), in order, in ms."""
        played = sorted(self.player.played, key=lambda p: p.start)
        return [
            1000 * (b.start - a.end)
            for a, b in itertools.pairwise(played)
            if b.start - a.end > 0.001
        ]

    def heard_ms(self, until: float | None = None) -> float:
        """Audio the caller heard by `until` (default: now), in ms."""
        t = self.now if until is None else until
        return 1000 * sum(
            min(t, played.end) - played.start for played in self.player.played if played.start < t
        )


def greeting_run(**playout: Any) -> CoreRun:
    config = CoreConfig(
        stream_sid=STREAM_SID,
        playout=PlayoutConfig(**playout),
        greeting_instructions="Greet the caller.",
        turns=INTERRUPT_AT_ONCE,
    )
    return CoreRun(config=config)
