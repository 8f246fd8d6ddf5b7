"""The link to Twilio's player: measured from clean echoes, used wherever the caller is placed."""

from __future__ import annotations

import pytest

from playout import LinkEstimate, MarkOut, PlayoutConfig, PlayoutTracker, SpeakingReason

from .harness import Shell


def answer(shell: Shell, ms: int, item: str = "i1") -> None:
    shell.tracker.audio_delta("r1", item, b"\x10" * (ms * 8), shell.now)
    shell.tracker.audio_done("r1", item, shell.now)


def test_the_estimate_is_the_median_of_recent_samples_with_the_prior_until_then() -> None:
    link = LinkEstimate(prior_rtt_ms=100, prior_jitter_ms=20)
    assert (link.rtt_s, link.jitter_s, link.samples) == (0.1, 0.02, 0)
    assert link.stats().rtt_p50_ms is None
    for rtt in (0.30, 0.32, 0.31, 0.90, 0.30):  # one echo held up by an underrun
        link.sample(rtt)
    assert link.rtt_s == pytest.approx(0.31)
    assert link.one_way_s == pytest.approx(0.155)
    assert link.stats().samples == 5
    assert link.stats().rtt_p50_ms == 310


def test_the_first_mark_after_silence_measures_the_round_trip() -> None:
    shell = Shell(delay_s=0.06, echo_delay_s=0.06)
    answer(shell, 1000)
    shell.run_until(0.3)  # the first mark (100 ms in) played at 0.16 and echoed at 0.22

    assert shell.tracker.link.samples == 1
    assert shell.tracker.link.rtt_s == pytest.approx(0.12, abs=1e-6)
    assert shell.echoes[0].link_sample


def test_only_clean_echoes_are_samples() -> None:
    shell = Shell(delay_s=0.05, echo_delay_s=0.05)
    answer(shell, 2000)
    shell.run_until(3.0)
    # Twenty marks echoed, one of them after silence.
    assert len([e for e in shell.echoes if e.accepted]) >= 20
    assert shell.tracker.link.samples == 1
    answer(shell, 500, item="i2")  # after silence: a second clean sample
    shell.run_until(4.0)
    assert shell.tracker.link.samples == 2


@pytest.mark.parametrize(("one_way", "at"), [(0.0, 2.0), (0.06, 2.0), (0.15, 2.0), (0.15, 0.25)])
def test_truncation_is_what_the_caller_had_heard_when_the_clear_landed(
    one_way: float, at: float
) -> None:
    shell = Shell(delay_s=one_way, echo_delay_s=one_way)
    answer(shell, 6000)
    shell.run_until(at)

    outcome = shell.cancel()

    heard = shell.player.heard_ms("i1", at + one_way)  # the clear lands one way later
    assert outcome.truncate is not None
    assert abs(outcome.truncate.audio_end_ms - heard) <= 2


def test_the_estimate_meets_the_echoes_once_the_link_is_known() -> None:
    shell = Shell(delay_s=0.15, echo_delay_s=0.15)
    answer(shell, 4000)
    shell.run_until(5.0)
    accepted = [e for e in shell.echoes if e.accepted]
    assert all(abs(e.estimate_error_ms) <= 1 for e in accepted[1:])


def test_the_caller_is_still_hearing_the_ai_one_way_past_the_deadline() -> None:
    config = PlayoutConfig(grace_ms=40, link_rtt_prior_ms=300, link_jitter_prior_ms=0)
    tracker = PlayoutTracker(config)
    tracker.audio_delta("r1", "i1", b"\x10" * 1600, 0.0)  # 200 ms
    tracker.audio_done("r1", "i1", 0.0)
    tracker.poll(0.0)
    # Played at the phone from 0.15 to 0.35 (one way 150 ms), plus the 40 ms grace
    # (after that only the marks not yet echoed keep it speaking, for a bounded time).
    assert tracker.speaking_reason(0.3899) == SpeakingReason.PLAYOUT
    assert tracker.speaking_reason(0.3901) == SpeakingReason.AWAITING_ECHO


def test_speech_right_after_the_end_is_not_a_barge_in_on_a_local_link() -> None:
    config = PlayoutConfig(link_rtt_prior_ms=0, link_jitter_prior_ms=0)
    tracker = PlayoutTracker(config)
    tracker.audio_delta("r1", "i1", b"\x10" * 1600, 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    tracker.poll(0.0)
    # Only the 40 ms grace after the end (not the 250 ms it used to be).
    assert tracker.speaking_reason(0.239) == SpeakingReason.PLAYOUT
    assert tracker.speaking_reason(0.241) == SpeakingReason.AWAITING_ECHO


def test_an_echo_within_the_jitter_moves_the_estimate_a_quarter_beyond_it_all_the_way() -> None:
    config = PlayoutConfig(lead_ms=1000, link_rtt_prior_ms=0, link_jitter_prior_ms=20)
    tracker = PlayoutTracker(config)
    # Three short answers after silence: clean round trips of 0, 20 and 40 ms.
    for k, rtt in enumerate((0.0, 0.02, 0.04)):
        tracker.audio_delta(f"r{k}", f"a{k}", b"\x10" * 160, float(k))
        tracker.audio_done(f"r{k}", f"a{k}", float(k))
        (name,) = [o.name for o in tracker.poll(float(k)) if isinstance(o, MarkOut)]
        tracker.mark_echoed(name, k + 0.02 + rtt)
    assert tracker.link.jitter_measured

    tracker.audio_delta("r9", "i1", b"\x10" * (1000 * 8), 10.0)
    tracker.audio_done("r9", "i1", 10.0)
    names = [o.name for o in tracker.poll(10.0) if isinstance(o, MarkOut)]
    tracker.mark_echoed(names[0], 10.12)  # clean again: 20 ms, the median stays 20 ms
    assert tracker.link.rtt_s == pytest.approx(0.02)
    assert 2 * tracker.link.jitter_s == pytest.approx(0.028)

    # 20 ms late: within twice the jitter (28 ms), a quarter of it is taken.
    echo = tracker.mark_echoed(names[1], 10.24)
    assert echo.estimate_error_ms == 20
    assert tracker.heard_ms("i1", 10.3) == 295
    # 100 ms late: beyond the jitter, the player really is there.
    tracker.mark_echoed(names[4], 10.62)
    assert tracker.heard_ms("i1", 10.7) == 600


def test_until_the_jitter_is_measured_an_echo_is_followed_all_the_way() -> None:
    config = PlayoutConfig(lead_ms=1000, link_rtt_prior_ms=0, link_jitter_prior_ms=20)
    tracker = PlayoutTracker(config)
    tracker.audio_delta("r1", "i1", b"\x10" * (1000 * 8), 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    names = [o.name for o in tracker.poll(0.0) if isinstance(o, MarkOut)]
    tracker.mark_echoed(names[0], 0.1)  # clean: the round trip is 0
    assert not tracker.link.jitter_measured

    tracker.mark_echoed(names[1], 0.22)  # 20 ms late, within the prior's band
    assert tracker.heard_ms("i1", 0.3) == 280


def test_a_mark_sent_after_its_audio_played_measures_the_link_from_its_own_send() -> None:
    config = PlayoutConfig(link_rtt_prior_ms=100)
    tracker = PlayoutTracker(config)
    tracker.audio_delta("r1", "i1", b"\x10" * 160, 0.0)
    tracker.poll(0.0)  # 20 ms of audio, no mark yet (the answer goes on)
    tracker.audio_done("r1", "i1", 0.5)
    (mark,) = [o for o in tracker.poll(0.5) if isinstance(o, MarkOut)]
    # Sent at 0.5 into a player dry since 0.02: it echoes one round trip after its send.
    echo = tracker.mark_echoed(mark.name, 0.53)
    assert echo.link_sample
    assert tracker.link.rtt_s == pytest.approx(0.03)
    assert echo.estimate_error_ms == 0


def test_a_clears_returned_marks_measure_the_link_without_the_players_lead() -> None:
    """A player that starts each run 100 ms after its audio arrives: a run's first echo
    says 40 + 100 ms, the marks a clear returns say the link's own 40 ms."""
    shell = Shell(delay_s=0.02, echo_delay_s=0.02, lead_s=0.1)
    answer(shell, 3000)
    shell.run_until(1.0)
    assert shell.tracker.link.rtt_s == pytest.approx(0.14)
    shell.cancel()
    shell.run_until(1.1)
    link = shell.tracker.link
    assert link.rtt_s == pytest.approx(0.14)
    assert link.lead_s == pytest.approx(0.1)
    assert link.samples == 1  # a clear's trip is not a run's sample


def test_samples_a_late_clock_dated_move_back_when_it_learns_how_late() -> None:
    link = LinkEstimate(prior_rtt_ms=100, prior_jitter_ms=20)
    link.redate(-0.05)  # nothing measured yet: the prior stands
    assert link.rtt_s == pytest.approx(0.1)
    for rtt in (0.12, 0.13, 0.14):
        link.sample(rtt)
    link.clear_sample(0.09)
    assert link.lead_s == pytest.approx(0.04)
    link.redate(-0.08)
    assert link.rtt_s == pytest.approx(0.05)
    assert link.lead_s == pytest.approx(0.04)
    assert link.stats().rtt_p50_ms == 50
    link.redate(-1.0)  # never below nothing
    assert link.rtt_s == 0.0
