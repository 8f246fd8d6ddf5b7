"""Caller sounds read from their rows: the verdicts' figures, the pauses paired with how they
ended, and both in words (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from calls.review.sounds import (
    AnswerPause,
    KindRow,
    PauseOutcome,
    answer_pauses,
    pause_words,
    span,
    turn_verdict,
    verdict_words,
)


def judged(verdict: str, decided_by: str, **details: Any) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "decided_by": decided_by,
        "decision_ms": 1200,
        "speech_onset_offset_ms": 3800,
        "item_ids": ["item_u1"],
        "voice_ms": 360,
        "sounds": 1,
        "voice_frames": 18,
        "echo_frames": 0,
        "words": "",
        "paused": False,
        "interruptible": True,
    } | details


def test_a_verdict_reads_its_figures() -> None:
    details = judged(
        "interruption", "length", words="  wait,\n stop ", paused=True, stopped_hearing_ms=640
    )

    v = turn_verdict(5000, details)

    assert (v.offset_ms, v.speech_onset_offset_ms, v.decision_ms) == (5000, 3800, 1200)
    assert (v.verdict, v.decided_by, v.voice_ms) == ("interruption", "length", 360)
    assert (v.words, v.paused, v.interruptible) == ("wait, stop", True, True)
    assert (v.stopped_hearing_ms, v.sounds, v.voice_frames, v.echo_frames) == (640, 1, 18, 0)
    assert v.item_ids == ("item_u1",)


def test_a_verdict_without_its_onset_began_its_decision_time_before_it() -> None:
    without = {k: v for k, v in judged("noise", "short").items() if k != "speech_onset_offset_ms"}

    assert turn_verdict(5000, without).speech_onset_offset_ms == 5000 - 1200
    assert (
        turn_verdict(
            5000, judged("noise", "short", speech_onset_offset_ms=5600)
        ).speech_onset_offset_ms
        == 5000
    )
    assert turn_verdict(500, without).speech_onset_offset_ms == 0  # never before the stream


@pytest.mark.parametrize(
    ("details", "sentence"),
    [
        (
            judged("backchannel", "backchannel_words", words="uh-huh"),
            "Caller said “uh-huh” (360 ms): backchannel, by its words, decided 1.2 s after "
            "they began; the answer went on",
        ),
        (
            judged("backchannel", "short", paused=True, voice_ms=240, decision_ms=620),
            "Caller made a sound (240 ms): backchannel, as it was short and no words came in "
            "time, decided 620 ms after they began; the answer was paused meanwhile, then went on",
        ),
        (
            judged("noise", "not_speech"),
            "Caller made a sound (360 ms): noise, as the service heard no speech in it, "
            "decided 1.2 s after they began; the answer went on",
        ),
        (
            judged("echo", "echo", echo_frames=9),
            "A sound on the caller's line (360 ms): echo, as the AI's own voice coming back, "
            "decided 1.2 s after it began; the answer went on",
        ),
        (
            judged("interruption", "stop_words", words="stop", stopped_hearing_ms=380),
            "Caller said “stop” (360 ms): interruption, by a stop phrase, decided 1.2 s after "
            "they began; the AI stopped: the caller stopped hearing it 380 ms after they began",
        ),
        (
            judged("interruption", "length", interruptible=False),
            "Caller made a sound (360 ms): interruption, by its length, decided 1.2 s after they "
            "began; a passage heard whole: it went on, and the caller is answered after it",
        ),
        (
            judged("interruption", "a_new_reason", voice_ms=None),
            "Caller made a sound: interruption, by a_new_reason, decided 1.2 s after they "
            "began; the AI stopped",
        ),
    ],
)
def test_a_verdict_in_words(details: dict[str, Any], sentence: str) -> None:
    assert verdict_words(turn_verdict(5000, details)) == sentence


def test_long_words_are_cut_in_the_sentence() -> None:
    words = " ".join(["word"] * 60)

    sentence = verdict_words(turn_verdict(5000, judged("interruption", "words", words=words)))

    said = sentence.split("“")[1].split("”")[0]
    assert len(said) == 120
    assert said.endswith("…")


def test_pauses_pair_with_their_resume_or_the_interruption_that_ended_them() -> None:
    rows: list[KindRow] = [
        ("answer_paused", 1000, {"item_id": "item_1", "heard_ms": 900, "requeued_ms": 700}),
        ("turn_verdict", 1400, judged("backchannel", "backchannel_words", paused=True)),
        ("answer_resumed", 1400, {"gap_ms": 430}),
        ("answer_paused", 3000, {"item_id": "item_1", "heard_ms": 2600, "requeued_ms": 300}),
        ("turn_verdict", 3500, judged("interruption", "length", paused=True)),
        ("barge_in", 3500, {"response_id": "resp_1"}),
        ("answer_resumed", 6000, {"gap_ms": 250}),  # its pause was not logged
        ("answer_paused", 8000, {"item_id": "item_2", "heard_ms": 100, "requeued_ms": 50}),
    ]

    assert answer_pauses(rows) == [
        AnswerPause(1000, PauseOutcome.RESUMED, 1400, 430, "item_1", 900, 700),
        AnswerPause(3000, PauseOutcome.INTERRUPTED, 3500, None, "item_1", 2600, 300),
        AnswerPause(None, PauseOutcome.RESUMED, 6000, 250),
        AnswerPause(8000, PauseOutcome.OPEN, None, None, "item_2", 100, 50),
    ]


def test_a_pause_the_hold_made_says_the_answer_ran_out_and_nothing_was_cleared() -> None:
    held = {"item_id": "item_1", "heard_ms": 900, "requeued_ms": 0}
    rows: list[KindRow] = [
        ("answer_paused", 1000, held | {"cleared": False, "stop_in_ms": 30}),
        ("answer_resumed", 1200, {"gap_ms": 170}),
        ("answer_paused", 3000, held | {"cleared": True, "stop_in_ms": 0, "requeued_ms": 80}),
        ("answer_resumed", 3200, {"gap_ms": 200}),
        # The held answer had run out before the pause came.
        ("answer_paused", 5000, held | {"cleared": False, "stop_in_ms": -10}),
        ("answer_resumed", 5200, {"gap_ms": 210}),
    ]

    first, second, third = answer_pauses(rows)
    assert (first.cleared, first.stop_in_ms) == (False, 30)
    assert "held: it ran out 30 ms later, nothing cleared" in pause_words(first)
    assert (second.cleared, second.requeued_ms) == (True, 80)
    assert "80 ms kept to send again" in pause_words(second)
    assert "held: it ran out 10 ms before, nothing cleared" in pause_words(third)


def test_a_resume_that_waited_for_the_clear_says_how_much_of_its_gap_that_was() -> None:
    rows: list[KindRow] = [
        ("answer_paused", 1000, {"item_id": "item_1", "heard_ms": 900, "cleared": True}),
        ("answer_resumed", 1380, {"gap_ms": 380, "waits_ms": 130}),
        ("answer_resumed", 3000, {"gap_ms": 250, "waits_ms": 0}),  # its pause not logged
    ]

    waited, unlogged = answer_pauses(rows)
    assert (waited.gap_ms, waited.waits_ms) == (380, 130)
    assert pause_words(waited).endswith(
        "the caller heard 380 ms of silence, 130 ms of it waiting for the clear's marks"
    )
    assert "waiting" not in pause_words(unlogged)


def test_a_pause_during_a_passage_heard_whole_waits_for_its_resume() -> None:
    rows: list[KindRow] = [
        ("answer_paused", 1000, {"item_id": "item_1", "heard_ms": 900}),
        ("turn_verdict", 1500, judged("interruption", "length", interruptible=False)),
        ("answer_resumed", 1500, {"gap_ms": 510}),
        ("answer_paused", 2000, {"item_id": "item_1", "heard_ms": 1300}),
        ("answer_paused", 2500, {"item_id": "item_1", "heard_ms": 1300}),
    ]

    outcomes = [(p.paused_offset_ms, p.outcome, p.ended_offset_ms) for p in answer_pauses(rows)]

    assert outcomes == [(1000, "resumed", 1500), (2000, "open", None), (2500, "open", None)]


def test_pauses_in_words() -> None:
    resumed = AnswerPause(1000, PauseOutcome.RESUMED, 1400, 430, "item_1", 1900, 700)
    cut = AnswerPause(3000, PauseOutcome.INTERRUPTED, 3500, None, "item_1", 260, None)

    assert pause_words(resumed) == (
        "The answer paused at 1.000 s while a caller's sound was judged (1.9 s of its item "
        "heard, 700 ms kept to send again); resumed at 1.400 s: the caller heard 430 ms of "
        "silence"
    )
    assert pause_words(cut) == (
        "The answer paused at 3.000 s while a caller's sound was judged (260 ms of its item "
        "heard); the sound was an interruption, at 3.500 s"
    )
    assert pause_words(AnswerPause(8000, PauseOutcome.OPEN, None)).endswith("judged; never resumed")
    assert pause_words(AnswerPause(None, PauseOutcome.RESUMED, 6000, 250)) == (
        "The answer resumed at 6.000 s after a 250 ms gap (its pause was not logged)"
    )


def test_spans_read_as_a_person_says_them() -> None:
    assert [span(ms) for ms in (0, 360, 999, 1000, 1240, 12_345)] == [
        "0 ms",
        "360 ms",
        "999 ms",
        "1.0 s",
        "1.2 s",
        "12.3 s",
    ]
