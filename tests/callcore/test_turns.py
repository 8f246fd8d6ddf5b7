"""The turn judge on a stepped clock: backchannels, noise, echo and interruptions."""

from __future__ import annotations

import pytest

from callcore.turns import (
    Answer,
    Decided,
    DecidedBy,
    Forget,
    Hold,
    Interrupt,
    Pause,
    Resume,
    TurnJudge,
    TurnPolicy,
    Verdict,
    default_backchannels,
    words_of,
)
from callcore.voice import Sound

FRAME = 0.02
MARGIN = 0.04


class Caller:
    """Feeds the judge 20 ms frames on a stepped clock; `captured` lags `now` by the round trip."""

    def __init__(self, judge: TurnJudge, rtt_s: float = 0.12) -> None:
        self.judge = judge
        self.now = 10.0
        self.rtt_s = rtt_s
        self.acts: list[object] = []
        self.ai_turn = True
        self.interruptible = True

    def frames(self, sound: Sound, ms: int) -> list[object]:
        acts: list[object] = []
        for _ in range(ms // 20):
            self.now += FRAME
            due = self.judge.next_timer()
            if due is not None and due <= self.now:
                acts += self.judge.timer(self.now)
            acts += self.judge.frame(
                self.now - self.rtt_s,
                sound,
                self.now,
                ai_turn=self.ai_turn,
                interruptible=self.interruptible,
                margin_s=MARGIN,
            )
        self.acts += acts
        return acts

    def until_quiet(self, ms: int = 3000) -> list[object]:
        return self.frames(Sound.SILENT, ms)

    def event(self, acts: list[object]) -> list[object]:
        self.acts += acts
        return acts


def kinds(acts: list[object]) -> list[type]:
    return [type(act) for act in acts]


def verdicts(acts: list[object]) -> list[Decided]:
    return [act for act in acts if isinstance(act, Decided)]


@pytest.fixture
def caller() -> Caller:
    return Caller(TurnJudge(TurnPolicy()))


def test_a_short_backchannel_plays_through_and_is_forgotten(caller: Caller) -> None:
    # The answer is held at the stop target from the onset (the frame's capture)...
    onset = caller.now + FRAME - caller.rtt_s
    assert caller.frames(Sound.VOICE, 160) == [Hold(pytest.approx(onset + 0.45))]
    assert caller.event(caller.judge.speech_started("item_u", caller.now, ai_turn=True)) == []
    # ...and goes on as the voice ends (at its first quiet frame), before the pause was due.
    assert caller.frames(Sound.SILENT, 80) == [Resume()]
    assert caller.judge.speech_stopped("item_u", caller.now) == []
    acts = caller.judge.transcript("item_u", "Uh-huh.", caller.now, ai_turn=True)
    [decided] = verdicts(acts)
    assert decided.verdict is Verdict.BACKCHANNEL
    assert decided.decided_by is DecidedBy.BACKCHANNEL_WORDS
    assert decided.voice_ms == 160
    assert not decided.paused
    assert Forget("item_u") in acts
    assert not any(isinstance(act, Interrupt | Answer) for act in acts)
    assert not caller.judge.deciding


def test_a_longer_backchannel_is_paused_at_the_stop_target_and_resumed(caller: Caller) -> None:
    first_at = caller.now + FRAME
    acts = caller.frames(Sound.VOICE, 440)
    assert kinds(acts) == [Hold, Pause]
    onset = first_at - caller.rtt_s
    acts = caller.frames(Sound.SILENT, 60)
    assert kinds(acts) == [Resume]
    caller.judge.speech_started("item_u", caller.now, ai_turn=True)
    caller.judge.speech_stopped("item_u", caller.now)
    [decided] = verdicts(caller.judge.transcript("item_u", "mm-hmm", caller.now, ai_turn=True))
    assert decided.verdict is Verdict.BACKCHANNEL
    assert decided.paused
    assert decided.onset == pytest.approx(onset)


def test_a_sound_ends_at_its_first_quiet_frame_unless_the_policy_waits_longer() -> None:
    # Every frame waited is one more of silence in a held answer: one by default...
    quick = Caller(TurnJudge(TurnPolicy()))
    quick.frames(Sound.VOICE, 200)
    assert quick.frames(Sound.SILENT, 20) == [Resume()]
    # ...two when the policy asks for 40 ms (`TURN_VOICE_END_MS`).
    patient = Caller(TurnJudge(TurnPolicy(voice_end_ms=40)))
    patient.frames(Sound.VOICE, 200)
    assert patient.frames(Sound.SILENT, 20) == []
    assert patient.frames(Sound.SILENT, 20) == [Resume()]


def test_a_frame_of_quiet_inside_words_resumes_and_the_voice_back_holds_at_the_same_target(
    caller: Caller,
) -> None:
    onset = caller.now + FRAME - caller.rtt_s
    caller.frames(Sound.VOICE, 240)
    caller.judge.speech_started("item_w", caller.now, ai_turn=True)
    assert caller.frames(Sound.SILENT, 20) == [Resume()]
    # The same sound: its stop target stands, and so does the pause due before it.
    acts = caller.frames(Sound.VOICE, 20)
    assert acts == [Hold(pytest.approx(onset + 0.45))]
    assert caller.judge.next_timer() == pytest.approx(onset + 0.45 - MARGIN)
    assert caller.frames(Sound.VOICE, 60) == [Pause()]
    # Its length counts from its first voice: 550 ms of it, quiet frame and all.
    assert verdicts(caller.frames(Sound.VOICE, 200)) == []
    [decided] = verdicts(caller.frames(Sound.VOICE, 20))
    assert decided.verdict is Verdict.INTERRUPTION
    assert decided.decided_by is DecidedBy.LENGTH
    assert decided.sounds == 2


def test_the_pause_is_timed_from_the_onset(caller: Caller) -> None:
    caller.frames(Sound.VOICE, 20)
    onset = caller.now - caller.rtt_s  # the frame's capture time, as the caller passes it
    due = caller.judge.next_timer()
    assert due == pytest.approx(onset + 0.45 - MARGIN)


def test_a_long_sound_is_an_interruption_by_length(caller: Caller) -> None:
    caller.judge.speech_started("item_i", caller.now, ai_turn=True)  # no voice yet: waits
    acts = caller.frames(Sound.VOICE, 600)
    [decided] = verdicts(acts)
    assert decided.verdict is Verdict.INTERRUPTION
    assert decided.decided_by is DecidedBy.LENGTH
    assert kinds(acts) == [Hold, Pause, Decided, Interrupt]
    # From the onset: the voice it takes (its last frame seen a round trip later).
    assert decided.decision_ms == pytest.approx(TurnPolicy().interrupt_after_ms + 110, abs=1)
    # The caller goes on; their turn is answered once the service commits it.
    caller.frames(Sound.VOICE, 800)
    assert caller.judge.speech_stopped("item_i", caller.now) == [Answer("item_i")]


def test_a_long_sound_whose_speech_start_is_late_is_still_an_interruption(caller: Caller) -> None:
    # Our loop, or the model's link, is late: the service's speech start comes in after
    # the sound grew long enough to decide. Not taken for the line's noise meanwhile.
    acts = caller.frames(Sound.VOICE, 600)
    assert verdicts(acts) == []
    assert kinds(acts) == [Hold, Pause]
    acts = caller.frames(Sound.VOICE, 300)
    assert verdicts(acts) == []
    acts = caller.judge.speech_started("item_l", caller.now, ai_turn=True)
    [decided] = verdicts(acts)
    assert (decided.verdict, decided.decided_by) == (Verdict.INTERRUPTION, DecidedBy.LENGTH)
    assert Interrupt() in acts


def test_a_long_sound_that_ends_before_the_services_word_stays_paused(caller: Caller) -> None:
    """600 ms of voice, ended, and the service's speech start read only after that (a
    busy loop): the answer is not resumed meanwhile; the speech start makes it an
    interruption."""
    acts = caller.frames(Sound.VOICE, 600) + caller.frames(Sound.SILENT, 200)
    assert kinds(acts) == [Hold, Pause]
    acts = caller.judge.speech_started("item_l", caller.now, ai_turn=True)
    [decided] = verdicts(acts)
    assert (decided.verdict, decided.decided_by) == (Verdict.INTERRUPTION, DecidedBy.LENGTH)
    assert decided.voice_ms == 600


def test_a_long_noise_that_ends_is_judged_when_the_service_has_not_heard_speech(
    caller: Caller,
) -> None:
    acts = caller.frames(Sound.VOICE, 600) + caller.frames(Sound.SILENT, 600)
    [decided] = verdicts(acts)
    assert (decided.verdict, decided.decided_by) == (Verdict.NOISE, DecidedBy.NOT_SPEECH)
    assert kinds(acts) == [Hold, Pause, Decided, Resume]


def test_a_long_sound_never_speech_to_the_service_is_noise_after_its_wait(caller: Caller) -> None:
    acts = caller.frames(Sound.VOICE, 540)
    assert verdicts(acts) == []
    long_at = caller.now + FRAME  # the frame that makes it 550 ms long
    acts = caller.frames(Sound.VOICE, 1000)
    [decided] = verdicts(acts)
    assert (decided.verdict, decided.decided_by) == (Verdict.NOISE, DecidedBy.NOT_SPEECH)
    wait_s = TurnPolicy().service_wait_ms / 1000
    assert decided.at == pytest.approx(long_at + wait_s, abs=FRAME)
    assert Resume() in acts  # the answer goes on over the noise
    assert caller.frames(Sound.VOICE, 2000) == []  # ignored while it goes on
    assert not caller.judge.deciding


def test_a_long_noise_back_after_a_breath_is_still_judged(caller: Caller) -> None:
    """A long noise ends, comes back before it was judged (a new run, short) and ends
    again, the service never hearing speech: judged noise all the same, not left paused
    for good."""
    acts = caller.frames(Sound.VOICE, 600)
    acts += caller.frames(Sound.SILENT, 300)  # longer than a breath: a new run comes next
    acts += caller.frames(Sound.VOICE, 100)
    acts += caller.frames(Sound.SILENT, 1000)
    [decided] = verdicts(acts)
    assert (decided.verdict, decided.decided_by) == (Verdict.NOISE, DecidedBy.NOT_SPEECH)
    assert Resume() in acts
    assert not caller.judge.deciding


@pytest.mark.parametrize("gap_ms", [100, 260])  # breaths within the sound; new runs
def test_a_choppy_long_noise_is_judged_after_the_wait_from_when_it_grew_long(
    caller: Caller, gap_ms: int
) -> None:
    """Music, a TV, typing: 600 ms, then 300 ms bursts with gaps, the service never
    hearing speech. Judged noise 400 ms after it grew long, not left held while each
    burst starts the wait over."""
    acts = caller.frames(Sound.VOICE, 600)
    for _ in range(4):
        acts += caller.frames(Sound.SILENT, gap_ms) + caller.frames(Sound.VOICE, 300)
    [decided] = verdicts(acts)
    assert (decided.verdict, decided.decided_by) == (Verdict.NOISE, DecidedBy.NOT_SPEECH)
    assert decided.decision_ms <= 550 + 400 + 120 + 2 * 20  # the round trip, two frames
    assert Resume() in acts


def test_a_short_stop_interrupts_when_its_words_come(caller: Caller) -> None:
    caller.frames(Sound.VOICE, 400)
    caller.judge.speech_started("item_s", caller.now, ai_turn=True)
    assert kinds(caller.frames(Sound.SILENT, 60)) == [Resume]  # it was paused
    caller.judge.speech_stopped("item_s", caller.now)
    acts = caller.judge.transcript("item_s", "Stop!", caller.now, ai_turn=True)
    [decided] = verdicts(acts)
    assert decided.verdict is Verdict.INTERRUPTION
    assert decided.decided_by is DecidedBy.STOP_WORDS
    assert Interrupt() in acts
    assert Answer("item_s") in acts


def test_a_cough_the_service_never_heard_as_speech_is_noise(caller: Caller) -> None:
    caller.frames(Sound.VOICE, 140)
    acts = caller.frames(Sound.SILENT, 600)
    [decided] = verdicts(acts)
    assert decided.verdict is Verdict.NOISE
    assert decided.decided_by is DecidedBy.NOT_SPEECH
    assert not any(isinstance(act, Interrupt | Forget | Answer) for act in acts)


def test_line_noise_with_no_words_is_noise_and_forgotten(caller: Caller) -> None:
    caller.frames(Sound.VOICE, 300)
    caller.judge.speech_started("item_n", caller.now, ai_turn=True)
    caller.frames(Sound.SILENT, 100)
    caller.judge.speech_stopped("item_n", caller.now)
    acts = caller.judge.transcript("item_n", "", caller.now, ai_turn=True)
    [decided] = verdicts(acts)
    assert (decided.verdict, decided.decided_by) == (Verdict.NOISE, DecidedBy.NO_WORDS)
    assert Forget("item_n") in acts


def test_no_words_in_time_judges_a_short_sound_a_backchannel(caller: Caller) -> None:
    caller.frames(Sound.VOICE, 300)
    caller.judge.speech_started("item_q", caller.now, ai_turn=True)
    caller.frames(Sound.SILENT, 100)
    caller.judge.speech_stopped("item_q", caller.now)
    acts = caller.frames(Sound.SILENT, 3000)
    [decided] = verdicts(acts)
    assert (decided.verdict, decided.decided_by) == (Verdict.BACKCHANNEL, DecidedBy.SHORT)
    assert Forget("item_q") in acts


def test_echo_is_judged_at_the_speech_start_and_forgotten(caller: Caller) -> None:
    assert caller.frames(Sound.ECHO, 400) == []
    acts = caller.judge.speech_started("item_e", caller.now, ai_turn=True)
    [decided] = verdicts(acts)
    assert (decided.verdict, decided.decided_by) == (Verdict.ECHO, DecidedBy.ECHO)
    assert not any(isinstance(act, Pause | Interrupt) for act in acts)
    assert caller.frames(Sound.ECHO, 5000) == []  # the whole answer comes back: nothing
    assert caller.judge.speech_stopped("item_e", caller.now) == [Forget("item_e")]


def test_the_caller_speaking_over_the_echo_interrupts(caller: Caller) -> None:
    caller.frames(Sound.ECHO, 400)
    caller.judge.speech_started("item_e", caller.now, ai_turn=True)
    acts = caller.frames(Sound.VOICE, 700)
    [decided] = verdicts(acts)
    assert decided.verdict is Verdict.INTERRUPTION
    assert decided.item_ids == ("item_e",)
    assert caller.judge.speech_stopped("item_e", caller.now) == [Answer("item_e")]


def test_a_click_is_not_judged(caller: Caller) -> None:
    acts = caller.frames(Sound.VOICE, 40) + caller.frames(Sound.SILENT, 800)
    assert kinds(acts) == [Hold, Resume]  # held from its first frame, on as it ends
    assert not caller.judge.deciding


def test_speech_while_the_ai_is_silent_is_a_turn(caller: Caller) -> None:
    caller.ai_turn = False
    assert caller.frames(Sound.VOICE, 1000) == []
    assert caller.judge.speech_started("item_t", caller.now, ai_turn=False) == []
    assert caller.judge.speech_stopped("item_t", caller.now) == [Answer("item_t")]


def test_a_passage_that_is_not_interruptible_is_never_held(caller: Caller) -> None:
    caller.interruptible = False
    acts = caller.frames(Sound.VOICE, 200)
    caller.judge.speech_started("item_p", caller.now, ai_turn=True, interruptible=False)
    acts += caller.frames(Sound.VOICE, 600)
    assert not any(isinstance(act, Pause) for act in acts)
    [decided] = verdicts(acts)
    assert decided.verdict is Verdict.INTERRUPTION
    assert not decided.interruptible
    assert Interrupt(deferred=True) in acts


def test_two_backchannels_apart_are_judged_together_by_their_words(caller: Caller) -> None:
    caller.frames(Sound.VOICE, 200)
    caller.judge.speech_started("item_a", caller.now, ai_turn=True)
    caller.frames(Sound.SILENT, 300)
    assert kinds(caller.frames(Sound.VOICE, 200)) == [Hold]  # a new sound: held anew
    caller.frames(Sound.SILENT, 100)
    caller.judge.speech_stopped("item_a", caller.now)
    [decided] = verdicts(caller.judge.transcript("item_a", "Yeah. Okay.", caller.now, ai_turn=True))
    assert decided.verdict is Verdict.BACKCHANNEL
    assert decided.sounds == 2


def test_a_breath_between_words_does_not_restart_the_length(caller: Caller) -> None:
    caller.frames(Sound.VOICE, 300)
    caller.judge.speech_started("item_b", caller.now, ai_turn=True)
    onset = caller.now - 0.3 + FRAME - caller.rtt_s
    # The sound ends (the pause was due just before it was seen to)...
    assert kinds(caller.frames(Sound.SILENT, 60)) == [Pause, Resume]
    acts = caller.frames(Sound.VOICE, 300)  # ...but it was a breath: one run of 660 ms
    # Held again at the first run's stop target (long past): paused at once.
    assert acts[:2] == [Hold(pytest.approx(onset + 0.45)), Pause()]
    [decided] = verdicts(acts)
    assert decided.decided_by is DecidedBy.LENGTH
    assert decided.sounds == 2


@pytest.mark.parametrize(
    ("text", "verdict", "by"),
    [
        ("Uh-huh.", Verdict.BACKCHANNEL, DecidedBy.BACKCHANNEL_WORDS),
        ("Mm-hmm", Verdict.BACKCHANNEL, DecidedBy.BACKCHANNEL_WORDS),
        ("yeah, okay, I see", Verdict.BACKCHANNEL, DecidedBy.BACKCHANNEL_WORDS),
        ("Wait, stop, I need to ask something", Verdict.INTERRUPTION, DecidedBy.STOP_WORDS),
        ("hold on", Verdict.INTERRUPTION, DecidedBy.STOP_WORDS),
        ("No.", Verdict.INTERRUPTION, DecidedBy.WORDS),
        ("  ", Verdict.NOISE, DecidedBy.NO_WORDS),
    ],
)
def test_words(text: str, verdict: Verdict, by: DecidedBy) -> None:
    assert TurnPolicy().judge_words(text) == (verdict, by)


def test_words_in_the_calls_language() -> None:
    policy = TurnPolicy(backchannels=default_backchannels("es"), stop_phrases=("espera",))
    assert policy.judge_words("Sí, vale.")[0] is Verdict.BACKCHANNEL
    assert policy.judge_words("¡Espera!")[0] is Verdict.INTERRUPTION
    assert words_of("D\u2019accord\u2026") == ("d'accord",)


def test_a_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="interrupt_after_ms"):
        TurnPolicy(interrupt_after_ms=-1)


def test_echo_the_caller_goes_on_speaking_into_is_their_turn(caller: Caller) -> None:
    caller.frames(Sound.ECHO, 400)
    [decided] = verdicts(caller.judge.speech_started("item_e", caller.now, ai_turn=True))
    assert decided.verdict is Verdict.ECHO
    caller.ai_turn = False  # the AI's words end; the service's speech goes on: the caller's
    assert caller.frames(Sound.VOICE, 700) == []
    assert caller.judge.speech_stopped("item_e", caller.now) == [Answer("item_e")]
