"""Re-framing, pacing to the lead, and mark placement."""

from __future__ import annotations

import itertools

import pytest

from playout import AudioFrame, MarkOut, Outbound, PlayoutConfig, PlayoutTracker

from .harness import Shell


def frames(out: list[Outbound]) -> list[AudioFrame]:
    return [o for o in out if isinstance(o, AudioFrame)]


def test_reframing_preserves_bytes_and_holds_the_partial_frame() -> None:
    tracker = PlayoutTracker()
    audio = bytes(range(256)) * 2  # 512 bytes: three frames and 32 bytes over
    tracker.audio_delta("r1", "i1", audio[:100], 0.0)
    tracker.audio_delta("r1", "i1", audio[100:], 0.0)
    sent = frames(tracker.poll(0.0))
    assert [len(f.payload) for f in sent] == [160, 160, 160]
    assert tracker.snapshot(0.0).pending_frames == 1  # the held 32 bytes
    tracker.audio_done("r1", "i1", 0.01)
    tail = tracker.poll(0.01)
    assert [len(f.payload) for f in frames(tail)] == [32]
    assert isinstance(tail[-1], MarkOut)  # the item's end mark follows its last frame
    assert b"".join(f.payload for f in sent + frames(tail)) == audio


def test_partial_frame_goes_out_when_another_item_queues_behind_it() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "a", b"\x01" * 200, 0.0)
    tracker.audio_delta("r1", "b", b"\x02" * 160, 0.0)
    sent = frames(tracker.poll(0.0))
    assert [(f.item_id, len(f.payload)) for f in sent] == [("a", 160), ("a", 40), ("b", 160)]


def test_paced_sending_keeps_lead_and_never_gaps() -> None:
    shell = Shell()
    shell.tracker.audio_delta("r1", "i1", b"\x10" * (2000 * 8), 0.0)
    shell.tracker.audio_done("r1", "i1", 0.0)
    shell.poll()
    assert len(shell.frames) == 15  # 300 ms of lead
    assert shell.tracker.next_deadline() is not None
    shell.run_until(5.0)
    assert shell.max_lead_s <= 0.3 + 1e-9
    assert shell.gaps == []
    assert len(shell.player.payload) == 2000 * 8


def test_frames_go_out_a_refill_at_a_time() -> None:
    """One wake-up per `refill_ms` (100) of audio, five frames each, never above the lead."""
    shell = Shell()
    shell.tracker.audio_delta("r1", "i1", b"\x10" * (2000 * 8), 0.0)
    shell.tracker.audio_done("r1", "i1", 0.0)
    shell.run_until(3.0)

    batches = sorted({round(t, 6) for t in shell.sent_at})
    sizes = [sum(1 for t in shell.sent_at if round(t, 6) == b) for b in batches]
    assert sizes[0] == 15  # the first 300 ms at once
    assert set(sizes[1:-1]) == {5}
    assert len(batches) <= 2 + (2000 - 300) // 100
    assert shell.max_lead_s <= 0.3 + 1e-9
    assert shell.gaps == []


def test_a_refill_of_one_frame_sends_a_frame_per_wake_up() -> None:
    shell = Shell(PlayoutConfig(refill_ms=20))
    shell.tracker.audio_delta("r1", "i1", b"\x10" * (1000 * 8), 0.0)
    shell.tracker.audio_done("r1", "i1", 0.0)
    shell.run_until(2.0)

    later = [t for t in shell.sent_at if t > 0]
    assert len(later) == len(set(later)) == 50 - 15
    assert shell.gaps == []


def test_lead_equal_to_frame_is_gapless() -> None:
    shell = Shell(PlayoutConfig(lead_ms=20, refill_ms=20))
    shell.tracker.audio_delta("r1", "i1", b"\x10" * (500 * 8), 0.0)
    shell.tracker.audio_done("r1", "i1", 0.0)
    shell.run_until(1.0)
    assert shell.max_lead_s <= 0.02 + 1e-9
    assert shell.gaps == []
    assert len(shell.player.payload) == 500 * 8


def kinds(out: list[Outbound]) -> str:
    return "".join("F" if isinstance(o, AudioFrame) else "M" for o in out)


def test_marks_every_interval_and_at_item_end() -> None:
    tracker = PlayoutTracker(PlayoutConfig(lead_ms=1000))
    tracker.audio_delta("r1", "i1", b"\x10" * (250 * 8), 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    out = tracker.poll(0.0)
    # 100 ms = 5 frames, then a mark, while the send goes on for another 100 ms;
    # the second interval's mark waits for the send's end, the item's (50 ms on).
    assert kinds(out) == "FFFFFMFFFFFFFFM"


def test_a_mark_near_the_end_of_a_send_waits_for_it_and_refills_go_whole() -> None:
    config = PlayoutConfig(lead_ms=400, refill_ms=200, mark_interval_ms=200)
    tracker = PlayoutTracker(config)
    tracker.audio_delta("r1", "i1", b"\x10" * (60 * 8), 0.0)
    assert kinds(tracker.poll(0.0)) == "FFF"  # 60 ms: no interval yet
    tracker.audio_delta("r1", "i1", b"\x10" * (1000 * 8), 0.02)
    # Up to the lead (360 ms more): the mark at 200 ms, with 220 ms of the send
    # left; the one due at 400 ms, with 20 ms left, ends the send instead.
    assert kinds(tracker.poll(0.02)) == "F" * 7 + "M" + "F" * 11 + "M"
    # Each refill (200 ms) is then one run of frames, ended by its mark.
    for _ in range(3):
        wake = tracker.next_send_at()
        assert wake is not None
        assert kinds(tracker.poll(wake)) == "F" * 10 + "M"


def test_end_mark_when_done_arrives_after_the_last_frame() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", b"\x10" * 160, 0.0)
    assert len(tracker.poll(0.0)) == 1
    tracker.audio_done("r1", "i1", 0.005)
    out = tracker.poll(0.005)
    assert len(out) == 1
    assert isinstance(out[0], MarkOut)
    assert tracker.poll(0.006) == []


def test_next_deadline_is_the_next_send_time() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", b"\x10" * (1000 * 8), 0.0)
    tracker.poll(0.0)
    # 300 ms sent; the next frames may go when only 200 ms remain unplayed (refill 100).
    wake = tracker.next_deadline()
    assert wake is not None
    assert abs(wake - 0.1) < 1e-9
    assert tracker.poll(0.099) == []
    assert len(frames(tracker.poll(0.1))) == 5


def test_with_a_one_frame_refill_the_next_frame_goes_when_a_frame_has_played() -> None:
    tracker = PlayoutTracker(PlayoutConfig(refill_ms=20))
    tracker.audio_delta("r1", "i1", b"\x10" * (1000 * 8), 0.0)
    tracker.poll(0.0)
    wake = tracker.next_deadline()
    assert wake is not None
    assert abs(wake - 0.02) < 1e-9
    assert tracker.poll(0.019) == []
    assert len(frames(tracker.poll(0.02))) == 1


def test_frames_carry_their_generation_and_ids() -> None:
    tracker = PlayoutTracker()
    assert tracker.response_started("r1", 0.0) == 0
    tracker.audio_delta("r1", "i1", b"\x10" * 160, 0.0)
    (frame,) = frames(tracker.poll(0.0))
    assert (frame.generation, frame.response_id, frame.item_id) == (0, "r1", "i1")
    assert tracker.is_live(0)


def test_a_ready_end_mark_makes_the_next_deadline_now() -> None:
    """audio_done after the last frame went out: the end mark is due at once."""
    tracker = PlayoutTracker(PlayoutConfig())
    tracker.audio_delta("r1", "i1", b"\x10" * 8 * 40, 0.0)  # two frames, no mark yet
    tracker.poll(0.0)
    tracker.audio_done("r1", "i1", 0.01)

    assert tracker.next_deadline() == 0.01
    assert [type(out).__name__ for out in tracker.poll(0.01)] == ["MarkOut"]
    assert tracker.next_deadline() != 0.01


# --- the start hold: a run's first audio waits briefly for more --------------------------

HOLD = PlayoutConfig(start_hold_ms=20, start_fill_ms=100)


def test_a_short_first_delta_waits_for_the_hold_then_goes() -> None:
    tracker = PlayoutTracker(HOLD)
    tracker.audio_delta("r1", "i1", b"\x10" * (40 * 8), 1.0)
    assert frames(tracker.poll(1.0)) == []
    assert tracker.next_send_at() == 1.02
    assert tracker.next_deadline() == 1.02
    assert frames(tracker.poll(1.019)) == []
    assert len(frames(tracker.poll(1.02))) == 2


def test_the_run_starts_at_once_when_enough_is_held() -> None:
    tracker = PlayoutTracker(HOLD)
    tracker.audio_delta("r1", "i1", b"\x10" * (40 * 8), 1.0)
    assert frames(tracker.poll(1.0)) == []
    tracker.audio_delta("r1", "i1", b"\x10" * (60 * 8), 1.01)  # 100 ms held now
    assert len(frames(tracker.poll(1.01))) == 5


def test_a_complete_short_answer_is_not_held() -> None:
    tracker = PlayoutTracker(HOLD)
    tracker.audio_delta("r1", "i1", b"\x10" * (40 * 8), 1.0)
    tracker.audio_done("r1", "i1", 1.0)
    assert len(frames(tracker.poll(1.0))) == 2


def test_audio_behind_audio_still_playing_is_not_held() -> None:
    """Only a run's start waits: the next answer queued behind a playing one goes on."""
    tracker = PlayoutTracker(HOLD)
    tracker.audio_delta("r1", "a", b"\x10" * (200 * 8), 1.0)
    tracker.audio_done("r1", "a", 1.0)
    assert len(frames(tracker.poll(1.0))) == 10
    tracker.audio_delta("r2", "b", b"\x20" * (40 * 8), 1.05)  # 150 ms still to play
    assert [f.item_id for f in frames(tracker.poll(1.05))] == ["b", "b"]


def test_without_a_hold_nothing_waits() -> None:
    tracker = PlayoutTracker()
    tracker.audio_delta("r1", "i1", b"\x10" * (40 * 8), 1.0)
    assert len(frames(tracker.poll(1.0))) == 2


def played_gaps_ms(shell: Shell) -> list[float]:
    played = shell.player.played
    pairs = itertools.pairwise(played)
    return [round((b.start - a.end) * 1000, 3) for a, b in pairs if b.start > a.end + 1e-9]


def uneven_answer(config: PlayoutConfig, late_s: float) -> Shell:
    """A 40 ms delta, then 240 ms produced at 6x real time and `late_s` slower on its way."""
    shell = Shell(config)
    shell.tracker.audio_delta("r1", "i1", b"\x10" * (40 * 8), 0.0)
    shell.run_until(280 / 6000 + late_s)
    shell.tracker.audio_delta("r1", "i1", b"\x10" * (240 * 8), shell.now)
    shell.tracker.audio_done("r1", "i1", shell.now)
    shell.run_until(1.0)
    return shell


def test_the_hold_keeps_an_uneven_start_gapless() -> None:
    """Sent on at once, 40 ms plays out before the rest arrives: the caller hears a gap."""
    assert played_gaps_ms(uneven_answer(PlayoutConfig(), late_s=0.005)) == [11.667]
    held = uneven_answer(HOLD, late_s=0.005)
    assert played_gaps_ms(held) == []
    assert held.player.played[0].start == 0.02  # it cost the answer 20 ms


def test_a_start_fill_above_the_lead_is_refused() -> None:
    with pytest.raises(ValueError, match="start_fill_ms"):
        PlayoutConfig(lead_ms=300, start_fill_ms=320)
