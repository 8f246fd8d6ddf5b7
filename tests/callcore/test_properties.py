"""Invariants of a call under random event sequences (hypothesis), on the core with a stepped clock.

- no audio of a cancelled answer ever leaves after its clear, even when the
  shell is still busy with earlier outputs as the barge-in comes (`busy`);
- a drain always ends;
- the playout deadline never moves back, except on a cancel;
- when the call ends, every playout interval it opened is closed, and the
  stream's end is the last record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcore import EndReason, RecordKind
from callcore.lifecycle import DRAINING_PHASES
from callcore.protocol import realtime as rt
from tests.callcore.harness import CoreRun

EPS = 1e-6

steps = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.integers(20, 2000), st.booleans(), st.booleans()),
        st.tuples(st.just("more"), st.integers(1, 900)),
        st.tuples(st.just("finish")),
        st.tuples(st.just("late"), st.integers(1, 500), st.booleans()),
        st.tuples(st.just("echoes"), st.booleans()),
        st.tuples(st.just("speech"), st.integers(0, 3000)),
        st.tuples(st.just("wait"), st.integers(0, 1500)),
        st.tuples(st.just("caller_audio"), st.integers(1, 10)),
        st.tuples(st.just("model_lost"), st.booleans()),
        st.tuples(st.just("hangup")),
        # The shell falls behind: it carries out at most this many outputs per input.
        st.tuples(st.just("busy"), st.integers(0, 3)),
        st.tuples(st.just("caught_up")),
    ),
    min_size=1,
    max_size=30,
)


@dataclass
class Checked(CoreRun):
    """A run that checks the invariants as outputs are carried out."""

    # Tone byte of each response (what the caller hears of it).
    tone_of: dict[str, int] = field(default_factory=dict)
    # (when, generation) of audio sent after the clear that cancelled its generation.
    leaks: list[tuple[float, int]] = field(default_factory=list)
    regressions: list[tuple[float, float, float]] = field(default_factory=list)
    last_deadline: float | None = None
    generation_seen: int = 0
    # Twilio loses mark echoes while set (the drain must end on its deadline).
    echoes_lost: bool = False
    # While set, the shell carries out at most this many outputs after each input:
    # the rest are still queued in the core when the next input arrives.
    busy: int | None = None

    def _to_twilio(self, text: str, generation: int | None = None) -> None:
        if '"event":"mark"' in text and self.echoes_lost:
            return
        if '"event":"media"' in text and generation is not None and generation < self.cleared_below:
            self.leaks.append((self.now, generation))
        super()._to_twilio(text, generation)

    def settle(self, limit: int | None = None) -> None:
        super().settle(self.busy if limit is None else limit)
        if not hasattr(self, "core"):
            return
        deadline = self.core.tracker.snapshot(self.now).deadline
        generation = self.core.tracker.generation
        if generation != self.generation_seen:  # a cancel: the deadline starts anew
            self.generation_seen = generation
            self.last_deadline = deadline
            return
        last = self.last_deadline
        if last is not None and deadline is not None and deadline < last - EPS:
            self.regressions.append((self.now, last, deadline))
        if deadline is not None:
            self.last_deadline = deadline


def play(run: Checked, script: list[tuple[object, ...]]) -> None:
    counter = 0
    open_response: str | None = None
    for step in script:
        if run.ended is not None:
            break
        kind = step[0]
        if kind == "answer":
            _, ms, done, end_call = step
            counter += 1
            response_id, item_id = f"r{counter}", f"i{counter}"
            tone = 0x10 + counter % 200
            run.tone_of[response_id] = tone
            run.event(rt.ResponseCreated(response_id))
            run.event(rt.AudioDelta(response_id, item_id, bytes([tone]) * (int(ms) * 8)))
            open_response = response_id
            if done:
                run.event(rt.AudioDone(response_id, item_id))
                ends = ("call_x",) if end_call else ()
                run.event(rt.ResponseDone(response_id, "completed", ends))
                open_response = None
        elif kind == "more" and open_response is not None:
            tone = run.tone_of[open_response]
            audio = bytes([tone]) * (int(step[1]) * 8)  # type: ignore[call-overload]
            run.event(rt.AudioDelta(open_response, f"i{open_response[1:]}", audio))
        elif kind == "finish" and open_response is not None:
            run.event(rt.ResponseDone(open_response, "completed", ()))
            open_response = None
        elif kind == "late" and counter:
            # A delta of an answer that may long be cancelled or done; maybe of a new item.
            _, ms, new_item = step
            response_id = f"r{max(1, counter - 1)}"
            item_id = f"x{response_id[1:]}" if new_item else f"i{response_id[1:]}"
            audio = bytes([run.tone_of[response_id]]) * (int(ms) * 8)  # type: ignore[call-overload]
            run.event(rt.AudioDelta(response_id, item_id, audio))
        elif kind == "echoes":
            run.echoes_lost = bool(step[1])
        elif kind == "speech":
            run.event(rt.SpeechStarted(int(step[1]), "u"))  # type: ignore[call-overload]
        elif kind == "wait":
            run.step(run.now + int(step[1]) / 1000)  # type: ignore[call-overload]
        elif kind == "caller_audio":
            run.caller_audio(20 * int(step[1]))  # type: ignore[call-overload]
        elif kind == "model_lost":
            run.core.model_closed(bool(step[1]), run.now)
            run.settle()
        elif kind == "hangup":
            run.core.end(EndReason.CALLER_HANGUP, run.now)
            run.settle()
        elif kind == "busy":
            run.busy = int(step[1])  # type: ignore[call-overload]
        elif kind == "caught_up":
            run.busy = None
            run.settle()
    run.busy = None
    run.settle()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, busy=st.sampled_from([None, None, 0, 1, 2]))
def test_call_invariants_hold_for_any_sequence_of_events(
    script: list[tuple[object, ...]], busy: int | None
) -> None:
    run = Checked(busy=busy)
    play(run, script)

    assert run.leaks == [], "audio of a cancelled answer was sent after its clear"
    assert run.regressions == [], "the deadline moved back without a cancel"
    if run.ended is None and run.core.life.phase in DRAINING_PHASES:
        run.step(run.now + 120)  # a drain always ends, bounded
        assert run.ended is not None, "a drain never ended"
    if run.ended is None:
        run.core.end(EndReason.CALLER_HANGUP, run.now)
        run.settle()
    assert run.ended is not None
    started = {r.details["response_id"] for r in run.of_kind(RecordKind.PLAYOUT_STARTED)}
    ended = [r.details["response_id"] for r in run.of_kind(RecordKind.PLAYOUT_ENDED)]
    assert started == set(ended), "a playout interval was left open"
    starts = [r for r in run.records if r.kind == RecordKind.PLAYOUT_STARTED]
    assert len(starts) >= len(started)
    assert run.records[-1].kind == RecordKind.STREAM_ENDED
    assert run.updates[-1].ended_at == run.records[-1].at
