"""Property tests: random deltas, polls, echoes and cancels against the reference player."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playout import CancelOutcome, EchoResult, PlayoutConfig

from .harness import EPS, Shell

FRAME_MS = 20

# (kind, gap before it in ms, size in bytes, which response, which item)
Action = tuple[str, int, int, int, int]

actions = st.lists(
    st.tuples(
        st.sampled_from(["delta", "delta", "delta", "done", "response_done", "new", "cancel"]),
        st.sampled_from([0, 0, 5, 20, 37, 100, 250, 400, 1500]) | st.integers(0, 400),
        st.sampled_from([1, 80, 159, 160, 161, 500, 1600, 4000, 8000]) | st.integers(1, 8000),
        st.integers(0, 3),
        st.integers(0, 1),
    ),
    min_size=5,
    max_size=40,
)
configs = st.sampled_from([20, 60, 300]).flatmap(
    lambda lead_ms: st.builds(
        PlayoutConfig,
        lead_ms=st.just(lead_ms),
        refill_ms=st.sampled_from(sorted({20, min(100, lead_ms), lead_ms})),
        mark_interval_ms=st.sampled_from([20, 100, 250]),
    )
)


@dataclass
class Script:
    """The model side of the simulation: which responses exist and what each generation got."""

    shell: Shell
    responses: list[str] = field(default_factory=list)
    received: dict[int, bytearray] = field(default_factory=dict)
    counter: int = 0
    cancel_times: list[float] = field(default_factory=list)

    def response(self, choice: int) -> str:
        if not self.responses or choice == 3:
            return self.new_response()
        return self.responses[-1 - min(choice, len(self.responses) - 1)]

    def new_response(self) -> str:
        response_id = f"r{len(self.responses)}"
        self.responses.append(response_id)
        return response_id

    def audio(self, size: int) -> bytes:
        start = self.counter
        self.counter += size
        return bytes((start + i) % 251 for i in range(size))

    def apply(self, action: Action) -> None:
        kind, _, size, which, item = action
        tracker, now = self.shell.tracker, self.shell.now
        if kind == "new":
            tracker.response_started(self.new_response(), now)
        elif kind == "delta":
            response_id = self.response(which)
            audio = self.audio(size)
            generation = tracker.generation
            if tracker.audio_delta(response_id, f"{response_id}-i{item}", audio, now):
                self.received.setdefault(generation, bytearray()).extend(audio)
        elif kind == "done" and self.responses:
            response_id = self.response(which)
            tracker.audio_done(response_id, f"{response_id}-i{item}", now)
        elif kind == "response_done" and self.responses:
            tracker.response_done(self.response(which), now)
        elif kind == "cancel":
            self.cancel()
        self.shell.poll()

    def cancel(self) -> None:
        shell = self.shell
        items = {f.item_id for f in shell.frames}
        heard_before = {i: shell.player.heard_ms(i, shell.now) for i in items}
        echoes_before = len(shell.echoes)
        outcome = shell.cancel()
        assert isinstance(outcome, CancelOutcome)
        assert all(e.result is EchoResult.CLEARED_BY_CANCEL for e in shell.echoes[echoes_before:])
        if outcome.truncate is not None:
            expected = heard_before[outcome.truncate.item_id]
            assert outcome.truncate.audio_end_ms >= 1
            assert abs(outcome.truncate.audio_end_ms - expected) <= FRAME_MS
        for item_id in outcome.delete_item_ids:
            assert heard_before.get(item_id, 0.0) < 1 + FRAME_MS
        self.cancel_times.append(shell.now)


def check_heard(shell: Shell, items: set[str], at: float) -> None:
    for item_id in items:
        ours = shell.tracker.heard_ms(item_id, at)
        truth = shell.player.heard_ms(item_id, at)
        assert abs(ours - truth) <= FRAME_MS, (item_id, at, ours, truth)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=actions, config=configs)
def test_random_calls_keep_every_invariant(script: list[Action], config: PlayoutConfig) -> None:
    shell = Shell(config)
    model = Script(shell)
    previous = 0.0
    for action in script:
        shell.run_until(shell.now + action[1] / 1000)
        # Heard now, and a moment ago (the shell asks about the speech onset).
        items = {f.item_id for f in shell.frames}
        check_heard(shell, items, shell.now)
        last_cancel = model.cancel_times[-1] if model.cancel_times else 0.0
        check_heard(shell, items, max(previous, last_cancel))
        previous = shell.now
        model.apply(action)

    # Let everything finish: close every live response, then wait it out.
    for response_id in model.responses:
        shell.tracker.response_done(response_id, shell.now)
    shell.run_until(shell.now + 120.0)
    check_heard(shell, {f.item_id for f in shell.frames}, shell.now)

    lead_s = config.lead_ms / 1000
    assert shell.max_lead_s <= lead_s + EPS
    assert shell.gaps == []
    assert shell.deadline_regressions == []
    # Bytes sent are the bytes received, in order: all of the live generation,
    # a prefix of each cancelled one.
    sent: dict[int, bytearray] = {}
    for frame in shell.frames:
        sent.setdefault(frame.generation, bytearray()).extend(frame.payload)
    live = shell.tracker.generation
    for generation, audio in model.received.items():
        got = bytes(sent.get(generation, b""))
        if generation == live:
            assert got == bytes(audio)
        else:
            assert bytes(audio).startswith(got)
    assert set(sent) <= set(model.received)
    assert all(0 < len(f.payload) <= config.frame_bytes for f in shell.frames)
    assert shell.tracker.drain_status(shell.now).done
    assert not shell.tracker.is_speaking(shell.now)
