"""Property: holds, pauses and resumes in any order never lose, repeat or leak a byte."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playout import AudioFrame, EchoResult, PlayoutConfig

from .harness import Shell

# (kind, gap before it in ms, size in bytes, which item)
Action = tuple[str, int, int, int]

KINDS = ["delta", "delta", "delta", "done", "new", "hold", "pause", "resume", "resume", "cancel"]

actions = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.sampled_from([0, 0, 5, 13, 20, 37, 100, 250, 1500]) | st.integers(0, 400),
        st.sampled_from([1, 159, 160, 161, 1600, 4000, 8000]) | st.integers(1, 8000),
        st.integers(0, 1),
    ),
    min_size=5,
    max_size=40,
)
configs = st.builds(
    PlayoutConfig,
    lead_ms=st.sampled_from([20, 60, 300, 300]),
    refill_ms=st.just(20),
    mark_interval_ms=st.sampled_from([20, 100, 250]),
    start_hold_ms=st.sampled_from([0, 20]),
    start_fill_ms=st.sampled_from([0, 20]),
    history_ms=st.sampled_from([0, 400, 2000]),
)


@dataclass
class Model:
    """The model side, and the books: what each generation got, and what of it went out.

    `kept[g]` is what was sent of generation g less what pauses took back: it
    must always be what the model gave, in order, with the rest still pending.
    """

    shell: Shell
    response: int = 0
    counter: int = 0
    received: dict[int, bytearray] = field(default_factory=dict)
    kept: dict[int, bytearray] = field(default_factory=dict)
    frames_seen: int = 0
    cleared: int = 0
    recut_seen: int = 0

    @property
    def response_id(self) -> str:
        return f"r{self.response}"

    def audio(self, size: int) -> bytes:
        start = self.counter
        self.counter += size
        return bytes((start + i) % 251 for i in range(size))

    def apply(self, action: Action) -> None:
        kind, _, size, item = action
        shell, tracker = self.shell, self.shell.tracker
        item_id = f"{self.response_id}-i{item}"
        if kind == "delta":
            audio, generation = self.audio(size), tracker.generation
            if tracker.audio_delta(self.response_id, item_id, audio, shell.now):
                self.received.setdefault(generation, bytearray()).extend(audio)
        elif kind == "done":
            tracker.audio_done(self.response_id, item_id, shell.now)
        elif kind == "new":
            tracker.response_done(self.response_id, shell.now)
            self.response += 1
        elif kind == "hold":
            shell.hold()
        elif kind == "pause":
            self.pause()
        elif kind == "resume":
            shell.resume()
        else:
            shell.cancel()
        shell.poll()

    def pause(self) -> None:
        shell, tracker = self.shell, self.shell.tracker
        self.book_frames()
        pending = tracker.drain_status(shell.now).pending_bytes
        outcome = shell.pause()
        self.cleared += outcome.marks_cleared
        requeued = tracker.drain_status(shell.now).pending_bytes - pending
        assert requeued >= 0
        assert outcome.requeued_ms == requeued // 8
        kept = self.kept.setdefault(tracker.generation, bytearray())
        del kept[len(kept) - requeued :]

    def book_frames(self) -> None:
        for frame in self.shell.frames[self.frames_seen :]:
            self.kept.setdefault(frame.generation, bytearray()).extend(frame.payload)
        self.frames_seen = len(self.shell.frames)

    def check_books(self) -> None:
        self.book_frames()
        tracker = self.shell.tracker
        # The marks a pause's clear returned came back and moved the cut (nothing was sent
        # since): back, what the caller had not heard after all is pending again; on,
        # what they had heard left pending as sent.
        recut, self.recut_seen = tracker.recut_bytes - self.recut_seen, tracker.recut_bytes
        kept = self.kept.setdefault(tracker.generation, bytearray())
        if recut < 0:
            del kept[len(kept) + recut :]
        elif recut > 0:
            received = self.received[tracker.generation]
            kept.extend(received[len(kept) : len(kept) + recut])
        live = tracker.generation
        for generation, received in self.received.items():
            kept = bytes(self.kept.get(generation, b""))
            assert bytes(received).startswith(kept), generation
            if generation == live:
                pending = tracker.drain_status(self.shell.now).pending_bytes
                assert len(kept) + pending == len(received)


def heard_by_generation(shell: Shell) -> dict[int, bytes]:
    heard: dict[int, bytearray] = {}
    for frame, played in zip(shell.frames, shell.player.played, strict=True):
        assert isinstance(frame, AudioFrame)
        heard.setdefault(frame.generation, bytearray()).extend(played.heard)
    return {generation: bytes(audio) for generation, audio in heard.items()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=actions, config=configs, one_way=st.sampled_from([0.0, 0.03, 0.05]))
def test_holds_and_pauses_never_lose_or_repeat_a_byte(
    script: list[Action], config: PlayoutConfig, one_way: float
) -> None:
    shell = Shell(config, delay_s=one_way, echo_delay_s=one_way)
    model = Model(shell)
    for action in script:
        shell.run_until(shell.now + action[1] / 1000)
        model.check_books()
        # What the caller heard lately, by the tracker (on the clock of our sends), is
        # what the player played one way later.
        since = shell.now - min(0.3, config.history_ms / 1000)
        heard = shell.tracker.heard_audio(since, shell.now)
        assert heard == shell.player.audio(since + one_way, shell.now + one_way)
        model.apply(action)
        model.check_books()

    shell.resume()
    shell.tracker.close_all(shell.now)
    shell.run_until(shell.now + 120.0)
    model.check_books()
    # Every mark a pause cleared came back as cleared, not as evidence.
    returned = [e for e in shell.echoes if e.result is EchoResult.CLEARED_BY_PAUSE]
    assert len(returned) == model.cleared
    assert shell.sent_while_held == []
    assert shell.gaps == []
    assert shell.deadline_regressions == []
    # The caller heard every byte of the live generation once, in order; of a
    # cancelled one, a prefix.
    heard = heard_by_generation(shell)
    for generation, received in model.received.items():
        got = heard.get(generation, b"")
        if generation == shell.tracker.generation:
            assert got == bytes(received)
        else:
            assert bytes(received).startswith(got)
    assert shell.tracker.drain_status(shell.now).done
    assert not shell.tracker.is_speaking(shell.now)
