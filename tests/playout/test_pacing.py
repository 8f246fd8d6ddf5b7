"""Re-framing, pacing to the lead, and mark placement."""

from __future__ import annotations

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


def test_marks_every_interval_and_at_item_end() -> None:
    tracker = PlayoutTracker(PlayoutConfig(lead_ms=1000))
    tracker.audio_delta("r1", "i1", b"\x10" * (250 * 8), 0.0)
    tracker.audio_done("r1", "i1", 0.0)
    out = tracker.poll(0.0)
    kinds = ["F" if isinstance(o, AudioFrame) else "M" for o in out]
    # 100 ms = 5 frames between marks; the 50 ms tail ends with the item's mark.
    assert "".join(kinds) == "FFFFFMFFFFFMFFFM"


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
