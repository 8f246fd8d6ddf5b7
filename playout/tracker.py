"""The playout truth of one call: is the AI being heard right now, and how much of each answer."""

from __future__ import annotations

from dataclasses import dataclass

from playout.config import BYTES_PER_MS, BYTES_PER_SECOND, PlayoutConfig
from playout.deadline import PlayoutDeadline
from playout.estimate import HeardEstimate
from playout.history import SentAudio
from playout.items import ItemAudio, ResponseAudio, judge_items
from playout.ledger import SentLedger
from playout.link import LinkEstimate
from playout.marks import MarkBook
from playout.outbound import AudioFrame, MarkOut, Outbound
from playout.pending import PendingAudio
from playout.reports import (
    CancelOutcome,
    DrainStatus,
    EchoResult,
    HoldState,
    MarkEcho,
    PauseOutcome,
    PlayoutSnapshot,
    SpeakingReason,
)
from playout.rules import Slack, Timing, drain_done, next_wakeup, speaking_reason
from playout.status import format_playout_status, seconds_to_ms

# Echoes of marks a clear returned: not evidence of playback, but of the clear's arrival.
_CLEARED = (EchoResult.CLEARED_BY_CANCEL, EchoResult.CLEARED_BY_PAUSE)


@dataclass(frozen=True, slots=True)
class _Clear:
    """A clear sent at `sent_at`, starting send epoch `epoch`, the player cut at
    `heard_pos` by the estimate then. `line_pos`: where the estimate's line had the
    player, had it audio to play (the line holds from `line_since`; before it, the
    estimate's past), on the clock of sends and of echoes dated with round trip
    `rtt_s` (jitter `jitter_s`; `measured`: not the prior). `heard_before`: the
    furthest echoed position then; `sent_pos`: the end of what had been sent, where
    `newest`, the last mark it returns, lies. `times_link`: that mark's audio runs a
    round trip past the clear, so its echo can only be the clear's (the link's own
    round trip, `LinkEstimate.clear_sample`), never the player's reaching it first."""

    sent_at: float
    rtt_s: float
    jitter_s: float
    heard_pos: int
    line_since: float
    line_pos: float
    heard_before: int
    sent_pos: int
    measured: bool
    times_link: bool
    newest: str
    epoch: int


# The share of an echo's correction taken when it is within the link's jitter.
_NOISE_GAIN = 0.25

# A pause's clear's marks are waited for until Twilio's clock says they are overdue (a
# frame sent after they were due has been read: Twilio sends echoes and frames in
# order); with no frame to say so, this much longer on ours.
_CLEAR_OVERDUE_UNREAD_S = 1.0

# Float slack when comparing a computed send time with the `now` the shell
# woke at, so waking exactly at `next_deadline()` always sends.
_EPSILON_S = 1e-9
# A hold's last frame goes cut at its `until` (the caller hears the answer up to the
# stop target, not up to a frame short of it), unless less than this of it would go.
_MIN_CUT_BYTES = 5 * BYTES_PER_MS


class PlayoutTracker:
    """Sans-IO state machine of the audio between the model and the caller's ear.

    Every input and query takes `now`, monotonic seconds from the shell's
    clock; inputs must come with non-decreasing `now` (an earlier value is
    treated as the latest seen). Queries (`is_speaking`, `heard_ms`, ...)
    change nothing. The shell calls `poll(now)` whenever an input arrives and
    at `next_deadline()`, and sends what it returns, in order.

    The *deadline* is when all audio already sent, plus the audio held here
    queued behind it, will have finished playing to the caller (assuming
    pacing continues, which `next_deadline()` makes possible). It exists once
    something was sent since start or the last cancel, only moves forward,
    and is reset (None) by `cancel`; `hold` takes the audio held here off it,
    and `pause` ends it where the caller stopped hearing. Audio held while
    nothing is playing does not count until its first frame goes out.

    The link: Twilio's player lags our sends by one way, and a mark's echo
    reaches us one way after the audio before it played. The tracker keeps
    its estimate on the clock of our sends (audio sent at `t` is taken to
    play from `t`, which is where a clear sent at `t` lands), so an echo
    arriving at `t` says its audio played at `t - round trip`. The round trip
    is measured per call (`link`, from clean echoes; priors until then).

    While the bridge judges a sound the caller made (a backchannel, noise,
    echo, or an interruption), `hold` stops feeding Twilio, `pause` also
    stops what the caller hears (a `clear`, the unheard audio taken back),
    `resume` goes on from exactly the byte where the caller stopped hearing,
    and `cancel` makes it a barge-in. Every `clear` starts a new send epoch
    (`epoch`, `is_current`): output handed out before it is stale.
    """

    def __init__(self, config: PlayoutConfig | None = None) -> None:
        self.config = config if config is not None else PlayoutConfig()
        cfg = self.config
        self._timing = Timing.of(cfg)
        self._generation = 0
        self._now = float("-inf")
        self._responses: dict[str, ResponseAudio] = {}
        self._items: dict[str, ItemAudio] = {}
        # The live generation's responses and items, in the order first seen.
        self._gen_responses: list[ResponseAudio] = []
        self._gen_items: list[ItemAudio] = []
        self._pending = PendingAudio(cfg.frame_bytes)
        self._ledger = SentLedger()
        self._heard = HeardEstimate(float("-inf"), 0)
        self._marks = MarkBook()
        self._end = PlayoutDeadline()
        self._history = SentAudio(2 * (cfg.history_ms + cfg.lead_ms) * BYTES_PER_MS)
        self._hold = HoldState.FLOWING
        # While held: nothing goes out that would play after this (-inf: nothing at all).
        self._horizon = float("-inf")
        # Bumped by every clear (cancel, pause): output of an earlier epoch is stale.
        self._epoch = 0
        # Pacing resumed with audio held: the run it starts has no start hold.
        self._resumed = False
        self.link = LinkEstimate(cfg.link_rtt_prior_ms, cfg.link_jitter_prior_ms)
        # The last clear, until the newest mark it returned comes back (its trip); how far
        # pauses' cuts moved when theirs did, in all (bytes): back (< 0), the caller had
        # stopped earlier; on (> 0), the clear took longer than the audio had.
        self._clear: _Clear | None = None
        self.recut_bytes = 0
        # A resume asked for while the pause's clear was still out: it waits for the
        # clear's marks (they may move the cut; due back by `settling_by`).
        self._resume_waits = False
        # The latest of the caller's frames read: when it reached us, had we been on time
        # (`twilio_read`), and whether Twilio's clock dated it.
        self._twilio_at = float("-inf")
        self._twilio_dated = False
        # The player ran dry and a new run started: its first mark's echo is a clean
        # round-trip sample.
        self._fresh_run = False
        self._last_audio_at: float | None = None
        # When the oldest audio held here arrived (a run's start hold counts from it).
        self._held_since = 0.0
        # Axis positions: where the live generation began, the furthest echoed
        # mark, and the last mark placed.
        self._gen_start_pos = 0
        self._confirmed_pos = 0
        self._mark_pos = 0
        # A mark is ready to follow the audio sent (an item's end, or a hold's start).
        self._mark_due = False
        # Responses created and not yet done, of any generation: the model is generating.
        self._open_responses: set[str] = set()
        # `next_deadline()` as of the last input (None: not known yet). Every input
        # passes through `_advance`, which forgets it: nothing else changes it.
        self._wakeup: tuple[float | None] | None = None

    # --- model-side inputs ---------------------------------------------------

    @property
    def generation(self) -> int:
        """The live generation (bumped by each cancel)."""
        return self._generation

    def is_live(self, generation: int) -> bool:
        """Whether output of `generation` may still be sent."""
        return generation == self._generation

    @property
    def epoch(self) -> int:
        """The send epoch (bumped by each cancel and pause: each `clear`)."""
        return self._epoch

    def is_current(self, epoch: int) -> bool:
        """Whether a frame or mark of send epoch `epoch` may still be sent (no clear since)."""
        return epoch == self._epoch

    def is_live_response(self, response_id: str) -> bool:
        """Whether the response belongs to the live generation (an unknown one does)."""
        response = self._responses.get(response_id)
        return response is None or response.generation == self._generation

    def response_started(self, response_id: str, now: float) -> int:
        """`response.created`: returns the response's generation (known ones keep theirs)."""
        self._advance(now)
        response = self._responses.get(response_id)
        if response is None:
            response = self._new_response(response_id)
        if not response.done:
            self._open_responses.add(response_id)
        return response.generation

    def audio_delta(self, response_id: str, item_id: str, audio: bytes, now: float) -> bool:
        """Model audio (mu-law bytes, any size). False: dropped, its generation is dead.

        A response never announced is taken as a new response of the live generation.
        A response can hold several audio items, one after the other; the first
        audio of the next one ends the one before (the model has moved on, even
        if its `audio_done` comes later), so the end mark of the one before
        follows its own last frame: the evidence that it was heard whole. Audio
        of an item after the next one began is not played (the caller would hear
        it after the next item's words): it is counted in the item's `late_bytes`,
        and the answer's `cut_short` items say what the model must forget.
        """
        now = self._advance(now)
        response = self._responses.get(response_id)
        if response is None:
            response = self._new_response(response_id)
        if response.generation != self._generation:
            return False
        item = self._items.get(item_id)
        if item is not None and item.generation != self._generation:
            return False
        if not audio:
            return True
        if item is not None and item.superseded:
            item.late_bytes += len(audio)
            return False
        if item is None:
            for earlier in response.items:
                earlier.superseded = True
                self._close_item(earlier)
            item = ItemAudio(item_id, response_id, self._generation)
            self._items[item_id] = item
            response.items.append(item)
            self._gen_items.append(item)
        item.received_bytes += len(audio)
        response.received_bytes += len(audio)
        if not self._pending.held_bytes:
            self._held_since = now
        self._pending.push(item, audio)
        self._last_audio_at = now
        self._extend(now)
        return True

    def audio_done(self, response_id: str, item_id: str, now: float) -> None:
        """The item's audio is complete: its partial frame may go, then its end mark."""
        self._advance(now)
        item = self._items.get(item_id)
        if item is not None and item.generation == self._generation:
            self._close_item(item)

    def response_done(self, response_id: str, now: float) -> None:
        """`response.done`: every item of the response is complete, whatever its status."""
        self._advance(now)
        self._open_responses.discard(response_id)
        response = self._responses.get(response_id)
        if response is None or response.generation != self._generation:
            return
        response.done = True
        for item in response.items:
            self._close_item(item)

    def close_all(self, now: float) -> None:
        """No more audio will come (a hangup, the model lost): every open item is complete.

        Whatever the model may still be generating will not be played.
        """
        self._advance(now)
        self._open_responses.clear()
        for response in self._gen_responses:
            response.done = True
        for item in self._gen_items:
            self._close_item(item)

    def generating(self) -> bool:
        """Whether a response was created and is not done (`response.cancel` has work to do)."""
        return bool(self._open_responses)

    def generating_ids(self) -> frozenset[str]:
        """The responses created and not done."""
        return frozenset(self._open_responses)

    def item_audio_ms(self, item_id: str) -> int:
        """Audio accepted from the model for the item, in ms (0 if unknown)."""
        item = self._items.get(item_id)
        return 0 if item is None else item.received_bytes // BYTES_PER_MS

    def cut_short(self, response_id: str) -> list[tuple[str, int]]:
        """Items of the response whose audio went on after its next item began, each with
        the audio of it played (ms): the model holds more of them than was said."""
        response = self._responses.get(response_id)
        if response is None:
            return []
        return [
            (item.item_id, item.received_bytes // BYTES_PER_MS)
            for item in response.items
            if item.late_bytes
        ]

    def response_audio_ms(self, response_id: str) -> int:
        """Audio accepted from the model for the response, in ms (0 if unknown)."""
        response = self._responses.get(response_id)
        return 0 if response is None else response.received_bytes // BYTES_PER_MS

    # --- Twilio side -----------------------------------------------------------

    def poll(self, now: float) -> list[Outbound]:
        """Frames and marks to send now, in order.

        Once Twilio holds no more than `lead_ms - refill_ms` (the estimate),
        frames go out while, after sending, it holds at most `lead_ms`. A mark
        follows the end of each completed item's audio, and each
        `mark_interval_ms` of sent audio; but when less than that is left of
        the send under way, that mark waits for the send's end: the frames sent
        together go to Twilio as one message, which a mark would split in two.
        While paused it hands out marks only; while held, the frames that play
        out by the hold's `until` (the one it falls in cut short there), then a
        mark after the last of them.
        """
        now = self._advance(now)
        out: list[Outbound] = []
        if self._resume_waits:
            self.cut_settled(now)  # the clear's marks may be overdue: the resume goes on
        if self._mark_due:
            self._place_mark(now, out)
        send_at = self.next_send_at()
        if send_at is None or send_at > now + _EPSILON_S:
            return self._finish_poll(now, out)  # nothing to send, or not yet down to refill
        interval = self.config.mark_interval_bytes
        while size := self._pending.next_frame_size():
            sent_pos = self._ledger.sent_pos
            start = self._end.frame_start(now, sent_pos)
            if start + size / BYTES_PER_SECOND - now > self._timing.lead_s + _EPSILON_S:
                break
            if (size := self._size_by_horizon(start, size)) == 0:
                break  # held: it would play after the hold's `until` (`_finish_poll` marks)
            sent_end = self._end.sent_end(sent_pos)
            if sent_end is None or sent_end < now:
                self._fresh_run = True
            self._end.on_send(now, sent_pos)
            item, payload, item_ended = self._pending.pop_frame(size)
            self._heard.on_send(now, size)
            self._ledger.append(item, size)
            self._history.append(payload)
            self._resumed = False
            out.append(
                AudioFrame(payload, item.generation, item.response_id, item.item_id, self._epoch)
            )
            if item_ended or (
                self._ledger.sent_pos - self._mark_pos >= interval
                and self._send_left(now) >= interval
            ):
                self._place_mark(now, out)
        if (
            out
            and isinstance(out[-1], AudioFrame)
            and self._ledger.sent_pos - self._mark_pos >= interval
        ):
            self._place_mark(now, out)  # the interval's mark, at the send's end
        return self._finish_poll(now, out)

    def _size_by_horizon(self, start: float, size: int) -> int:
        """How much of the next frame (`size` bytes, playing from `start`) may go: all of
        it unless held; held, what plays by the hold's `until` (a frame it cuts goes short,
        the rest waits for the resume), or nothing when that is under `_MIN_CUT_BYTES`."""
        if self._hold is not HoldState.HELD:
            return size
        room = (self._horizon - start + _EPSILON_S) * BYTES_PER_SECOND
        if room >= size:
            return size
        return int(room) if room >= _MIN_CUT_BYTES else 0

    def _send_left(self, now: float) -> int:
        """About how many more bytes this poll will send: what is held, up to the lead."""
        start = self._end.frame_start(now, self._ledger.sent_pos)
        room = (now + self._timing.lead_s - start) * BYTES_PER_SECOND
        return min(self._pending.held_bytes, int(room + _EPSILON_S))

    def _finish_poll(self, now: float, out: list[Outbound]) -> list[Outbound]:
        if (
            self._hold is HoldState.HELD
            and self._ledger.sent_pos != self._mark_pos
            and self.next_send_at() is None
            and self._heard.playing(now)
        ):
            self._place_mark(now, out)  # held: nothing more goes, a mark ends what did
        self._extend(now)
        if self._history.oversized:
            self._history.forget_before(self._oldest_needed(now))
        return out

    def _extend(self, now: float) -> None:
        """The deadline covers what was sent and, unless held, what pacing sends on."""
        following = self._pending.held_bytes if self._hold is HoldState.FLOWING else 0
        self._end.extend(now, self._ledger.sent_pos, following)

    def _oldest_needed(self, now: float) -> int:
        """The lowest axis position still to play, or played within `history_ms`."""
        oldest = self._heard.position(now)
        for _, _, line, cap in self._heard.lines(now - self._timing.history_s, now):
            if line < cap:
                oldest = min(oldest, int(line))
        return oldest

    def mark_echoed(self, name: str, now: float, arrived: float | None = None) -> MarkEcho:
        """Twilio echoed mark `name`: evidence that the audio before it has played.

        `arrived` (<= `now`): when the echo reached us, dated by Twilio's clock
        (`callcore.caller_clock`: within a frame, whenever it was read); the
        evidence is dated by it, not by the read. None: dated by the read, with
        the uplink's jitter in it.
        Echoes of marks outstanding at a cancel or pause (Twilio's `clear`
        returns them all at once) and of dead generations are not evidence and
        change nothing.
        """
        now = self._advance(now)
        at = now if arrived is None else min(arrived, now)
        result, mark = self._marks.echo(name, self._generation)
        if mark is None:
            clear = self._clear
            if result in _CLEARED and clear is not None and clear.newest == name:
                self._clear_returned(clear, at, dated=arrived is not None)
                if self._resume_waits:
                    self._go_on()  # the resume that waited for them
                self._extend(now)
            return MarkEcho(name, result)
        if mark.clean:
            # All its audio went at once into an empty player: the lateness is the link.
            self.link.sample(at - mark.expected_at)
        # When the audio before the mark played, on the clock of our sends.
        played_at = at - self.link.rtt_s
        measured_at = played_at
        line_at = self._end.sent_end(mark.pos)
        if line_at is not None and line_at < mark.sent_at and played_at <= mark.sent_at:
            # The mark left after its audio had (by our line) played: the echo says
            # only that it had ended by then, which the line already holds.
            played_at = line_at
        noise_band = 2 * self.link.jitter_s if self.link.jitter_measured else 0.0
        if line_at is not None and abs(played_at - line_at) <= noise_band:
            # Within the link's measured jitter the echo's own delay is most of the
            # difference: move a fraction of the way (noise averages out over a few
            # echoes, a lasting offset is followed within about a second). Beyond it
            # the player really is elsewhere (a stall, a burst): follow it at once.
            # Until the jitter is measured nothing tells noise from truth: follow.
            played_at = line_at + _NOISE_GAIN * (played_at - line_at)
        self._confirmed_pos = max(self._confirmed_pos, mark.pos)
        self._heard.on_echo(played_at, mark.pos)
        self._end.on_echo(played_at, mark.pos)
        self._extend(now)
        return MarkEcho(
            name,
            result,
            generation=mark.generation,
            response_id=mark.response_id,
            item_id=mark.item_id,
            position_ms=mark.pos // BYTES_PER_MS,
            estimate_error_ms=seconds_to_ms(measured_at - mark.expected_at),
            round_trip_ms=seconds_to_ms(at - mark.sent_at),
            link_sample=mark.clean,
        )

    def cancel(self, now: float) -> CancelOutcome:
        """Barge-in: the shell sends Twilio `clear`. Everything unheard is gone.

        Drops pending audio, takes sent-but-unplayed audio as never heard,
        turns outstanding marks into cleared ones, bumps the generation and
        resets the deadline. The outcome says what to truncate and delete,
        and carries the evidence (a snapshot) taken just before. During a
        hold or pause it is the same (the audio a pause took back is unheard
        too: it goes), and it ends the hold.
        """
        now = self._advance(now)
        evidence = self.snapshot(now)
        heard_pos = self._heard.position(now)
        sent_pos = self._ledger.sent_pos
        playing = self._ledger.item_at(heard_pos - 1) if heard_pos > self._gen_start_pos else None
        truncate, deletes, kept = judge_items(
            self._gen_items, heard_pos, playing, self._open_responses
        )
        response_id: str | None = None
        if truncate is not None:
            response_id = self._items[truncate.item_id].response_id
        elif self._gen_responses:
            response_id = self._gen_responses[-1].response_id
        cancelled = tuple(response.response_id for response in self._gen_responses)

        self._clearing(now, heard_pos)
        marks_cleared = self._marks.clear()
        self._epoch += 1
        self._hold = HoldState.FLOWING
        self._resumed = False
        self._resume_waits = False
        self._pending.clear()
        self._ledger.drop_after(heard_pos)
        old_generation = self._generation
        self._generation += 1
        self._gen_responses = []
        self._gen_items = []
        self._heard.reset(now, sent_pos)
        self._end.reset()
        self._last_audio_at = None
        self._gen_start_pos = self._confirmed_pos = self._mark_pos = sent_pos
        self._mark_due = False
        self._fresh_run = False
        return CancelOutcome(
            truncate=truncate,
            delete_item_ids=deletes,
            kept_item_ids=kept,
            response_id=response_id,
            cancelled_response_ids=cancelled,
            generation=self._generation,
            cancelled_generation=old_generation,
            evidence=evidence,
            marks_cleared=marks_cleared,
        )

    # --- hold, pause, resume: while the bridge judges a sound of the caller's ---------

    @property
    def held(self) -> bool:
        """Whether pacing is held (by `hold` or `pause`) until `resume` or `cancel`."""
        return self._hold is not HoldState.FLOWING

    @property
    def paused(self) -> bool:
        """Whether a `pause` stopped what the caller hears (until `resume` or `cancel`)."""
        return self._hold is HoldState.PAUSED

    def hold(self, now: float, until: float | None = None) -> None:
        """Stop feeding Twilio: `poll` sends no frame that would play after `until`
        (None: no frame at all) until `resume` (or a `cancel`).

        Model audio is still accepted, into pending. What Twilio holds plays
        on, and pacing tops it up to `until` (the caller hears the answer up to
        then, and not after, without a `clear`; the frame `until` falls in goes
        cut short there, unless under 5 ms of it would); once nothing more may go, the
        next `poll` puts a mark after the last frame sent, if none follows it,
        so its echo dates the end of what the caller hears. The deadline stops counting the audio
        held here. A second hold may bring `until` earlier, not later; while
        paused it changes nothing.
        """
        now = self._advance(now)
        horizon = float("-inf") if until is None else until
        if self._hold is HoldState.PAUSED:
            return
        if self._hold is HoldState.HELD:
            self._horizon = min(self._horizon, horizon)
        else:
            self._hold = HoldState.HELD
            self._horizon = horizon
            self._resumed = False
            self._end.hold(self._ledger.sent_pos)

    def plays_until(self, now: float) -> float | None:
        """When the audio sent so far ends playing, by the estimate (None: it has by `now`,
        or nothing was sent): while held, when the caller stops hearing the answer."""
        end = self.played_until()
        return end if end is not None and end > now else None

    def played_until(self) -> float | None:
        """When the audio sent so far ends playing, by the estimate, past or to come (None:
        nothing was sent): held, when the caller stopped (or stops) hearing the answer."""
        return self._end.sent_end(self._ledger.sent_pos)

    def pause(self, now: float) -> PauseOutcome:
        """Stop what the caller hears: the shell sends Twilio `clear` right after. A hold, too.

        The clear lands where a frame sent at `now` would (the tracker's clock
        is that of our sends). Audio sent and, by the estimate, not heard by
        `now` goes back to the front of pending, in order and with its items,
        and the axis forgets it: `resume` sends it again from exactly the
        heard byte. Outstanding marks are cleared (their echoes read
        `CLEARED_BY_PAUSE`, not evidence); the estimate and the deadline are
        those of a player that ran dry at the heard point. The generation does
        not change: it is the same answer, to go on.

        The shell's part: the `clear` goes before anything still queued to
        Twilio, and every frame and mark handed out by an earlier `poll` and
        not sent yet is dropped (its epoch is no longer current: check
        `is_current(out.epoch)` at sending, as `is_live(out.generation)` after a
        cancel); its audio is among what was taken back. The outcome's
        `closing_mark`, if any, goes right before the clear, unchecked (it ends
        the epoch the clear ends). Outbound of the new epoch
        (`PauseOutcome.epoch`) is sent as usual. Idempotent but for the
        clear: a second pause takes nothing back.
        """
        now = self._advance(now)
        evidence = self.snapshot(now, held_back=True)  # held: the rest of the answer too
        heard_pos = self._heard.position(now)
        item_id = self.playing_item(now)
        heard_ms = 0 if item_id is None else self.heard_ms(item_id, now)
        closing: MarkOut | None = None
        if self._ledger.sent_pos != self._mark_pos:
            # The last frames went without a mark: one goes after them, before the clear,
            # so that the newest mark ends what was sent (`_clearing`).
            closing = self._place_mark(now, [])
        self._clearing(now, heard_pos)
        marks_cleared = self._marks.clear(EchoResult.CLEARED_BY_PAUSE)
        requeued = self._take_back(now, heard_pos)
        self._mark_due = False
        self._fresh_run = False
        self._resumed = False
        self._resume_waits = False
        self._hold = HoldState.PAUSED
        self._epoch += 1
        return PauseOutcome(
            item_id=item_id,
            heard_ms=heard_ms,
            requeued_ms=requeued // BYTES_PER_MS,
            epoch=self._epoch,
            marks_cleared=marks_cleared,
            evidence=evidence,
            closing_mark=closing,
        )

    def _take_back(self, now: float, heard_pos: int) -> int:
        """The player stopped at `heard_pos` at `now`: what was sent beyond it goes back to
        the front of pending, in order and with its items (bytes taken back)."""
        taken = self._ledger.rewind(heard_pos)
        audio = self._history.take_back(heard_pos)
        chunks: list[tuple[ItemAudio, bytes]] = []
        offset = 0
        for item, size in taken:
            chunks.append((item, audio[offset : offset + size]))
            offset += size
        if audio and not self._pending.held_bytes:
            self._held_since = now
        self._pending.push_front(chunks)
        self._heard.cut(now, heard_pos)
        self._end.cut(now, heard_pos)
        # Up to the heard point the player's state is known (nothing plays past it).
        self._confirmed_pos = self._mark_pos = heard_pos
        return len(audio)

    def _clearing(self, now: float, heard_pos: int) -> None:
        """A clear goes at `now`, cutting the player at `heard_pos` by the estimate (call
        before the marks are cleared). When the newest mark outstanding ends what was
        sent, its echo says when the player stopped: as the clear arrived (which returns
        it), or earlier, as the player ran dry at it (its own echo). Either way its trip
        dates where the caller stopped hearing. An older mark's echo could be its own,
        with audio played after it before the clear arrived: it dates nothing."""
        self._clear = None  # an earlier clear's return no longer says where this one cut
        newest = self._marks.newest()
        sent_pos = self._ledger.sent_pos
        if newest is None or newest.pos != sent_pos:
            return
        link = self.link
        line_since, line_pos = self._heard.line(now)
        self._clear = _Clear(
            now,
            link.rtt_s,
            link.jitter_s,
            heard_pos,
            line_since,
            line_pos,
            self._confirmed_pos,
            sent_pos,
            link.samples > 0,
            newest.expected_at - now >= link.rtt_s + 2 * link.jitter_s,
            newest.name,
            self._epoch + 1,
        )

    def _clear_returned(self, clear: _Clear, at: float, *, dated: bool) -> None:
        """The newest mark `clear` returned came back at `at`: its trip is the link's
        round trip without the player's lead (`LinkEstimate.clear_sample`), and it
        dates when the player stopped, on the clock of our sends (whose round trip
        holds the lead). A pause's cut moves to where the line was then: back, when the
        player's lead put it that much behind the line, and what the caller did not
        hear goes back to pending; on, when the clear took longer down than the audio
        had (the caller heard more), and that audio is taken as sent and heard."""
        self._clear = None
        trip_s = at - clear.sent_at
        # The cut at the end of what was sent (the estimate has the player done), and
        # the echo dated by Twilio's clock a frame or more before the clear left: the
        # player's own echo, at that end, read after the pause by a busy server. The
        # caller heard all of it: no round trip, however measured, moves the cut back.
        # (Mid-audio, an echo dated early is likelier a return dated early: Twilio
        # sending its frames late makes them look earlier than they came.)
        if dated and trip_s <= -self.config.frame_ms / 1000 and clear.heard_pos == clear.sent_pos:
            return
        if clear.times_link:
            self.link.clear_sample(trip_s)
        if (
            not clear.measured  # the prior round trip: the trip's difference says nothing
            or self._hold is not HoldState.PAUSED
            or self._epoch != clear.epoch
            or self._ledger.sent_pos != clear.heard_pos  # moved since (cannot be, paused)
        ):
            return
        stopped_at = clear.sent_at + trip_s - clear.rtt_s
        if stopped_at >= clear.line_since:
            stopped = clear.line_pos + (stopped_at - clear.sent_at) * BYTES_PER_SECOND
        else:
            stopped = self._heard.position(stopped_at)  # before the line: as known then
        heard_pos = max(
            clear.heard_before, self._gen_start_pos, min(round(stopped), clear.sent_pos)
        )
        # Within what one trip can tell, a repeat or a skip would be likelier than not to
        # be wrong: a frame, when Twilio's clock dated the echo; else the uplink's jitter
        # is in it too.
        noise_s = self.config.frame_ms / 1000
        if not dated:
            noise_s = max(noise_s, 2 * clear.jitter_s)
        if abs(heard_pos - clear.heard_pos) <= noise_s * BYTES_PER_SECOND:
            return
        if heard_pos < clear.heard_pos and heard_pos >= self._history.start:
            self._take_back(self._now, heard_pos)
        elif heard_pos > clear.heard_pos:
            self._heard_after_all(clear.sent_at, heard_pos)
        else:
            return
        self.recut_bytes += heard_pos - clear.heard_pos

    def _heard_after_all(self, cut_at: float, heard_pos: int) -> None:
        """The player stopped at `heard_pos`, beyond the pause's cut at `cut_at`: the audio
        up to it, at the front of pending (the cut took it back), is sent and heard after
        all, and the estimate's past says it played on from the cut to there."""
        for item, audio in self._pending.take_front(heard_pos - self._ledger.sent_pos):
            self._ledger.append(item, len(audio))
            self._history.append(audio)
        if not self._heard.play_on(cut_at, heard_pos):
            self._heard.cut(self._now, heard_pos)
        self._end.cut(self._now, heard_pos)
        self._confirmed_pos = self._mark_pos = heard_pos

    def resume(self, now: float) -> None:
        """End a hold or pause: pacing goes on from the first byte not heard.

        A run it starts (after a pause, or a hold long enough for Twilio to
        run dry) goes at once, without the start hold, and its first mark's
        echo is a clean link sample like any fresh run's. After a short hold,
        pacing tops Twilio up as it would have. Idempotent.

        After a pause whose clear's marks have not come back yet (on a measured
        link), it waits for them, since they may move the cut (`resuming_by`),
        until they are back or overdue (`cut_settled`: due a round trip, twice
        the jitter and a frame after the clear, on Twilio's clock); a `poll`
        then goes on. Still held meanwhile.
        """
        now = self._advance(now)
        if self._hold is HoldState.FLOWING:
            return
        if self.settling_by() is not None:
            # The pause's clear is still out: its marks may say the caller stopped
            # elsewhere than the cut, which only a resume not yet sent can follow. It
            # waits for them (`cut_settled` lets it go on when they are overdue).
            self._resume_waits = True
            self.cut_settled(now)
            return
        self._go_on()

    def settling_by(self) -> float | None:
        """Paused, the pause's clear still out on a measured link: when its marks are due
        back at the latest (a round trip, twice the jitter and a frame after it), on the
        clock of Twilio's frames; until they are, the pause's cut may still move (a
        truncation, a resume wait for it). None: the cut is settled."""
        clear = self._clear
        if (
            self._hold is not HoldState.PAUSED
            or clear is None
            or not clear.measured
            or clear.epoch != self._epoch
        ):
            return None
        return clear.sent_at + clear.rtt_s + 2 * clear.jitter_s + self.config.frame_ms / 1000

    def twilio_read(self, arrived: float, *, dated: bool) -> None:
        """A frame of the caller's was read; it reached us at `arrived` had we been on
        time (`callcore.caller_clock`; `dated`: by Twilio's clock). Every echo Twilio
        sent before it has been read too."""
        self._twilio_at = max(self._twilio_at, arrived)
        if dated is not self._twilio_dated:
            self._twilio_dated = dated
            self._wakeup = None  # a wait's deadline on our clock moves

    def settle_deadline(self) -> float | None:
        """When, on our clock, a wait for the pause's clear gives up if no frame says so
        first (None: nothing to wait for): with frames dated by Twilio's clock, read
        late by a busy loop, a while after `settling_by`."""
        due = self.settling_by()
        return None if due is None else self._give_up_at(due)

    def _give_up_at(self, due: float) -> float:
        return due + _CLEAR_OVERDUE_UNREAD_S if self._twilio_dated else due

    def cut_settled(self, now: float) -> bool:
        """Whether the pause's cut is settled: its clear's marks came back, or they are
        overdue (then it is as it was, and a resume waiting for them goes on). Overdue:
        a caller's frame read since says so on Twilio's clock, or (with no frame to say
        so) `settle_deadline` has passed."""
        due = self.settling_by()
        if due is None:
            return True
        if self._twilio_at < due and now < self._give_up_at(due):
            return False
        self._clear = None  # too late to say anything now
        if self._resume_waits:
            self._go_on()
        return True

    def stay_paused(self, now: float) -> None:
        """A resume waiting for the pause's clear (`resuming_by`) is called off: the
        answer stays paused, and the clear's marks may still move its cut."""
        self._advance(now)
        self._resume_waits = False

    def resuming_by(self) -> float | None:
        """A resume waiting for the pause's clear to come back: when its marks are due
        (`settling_by`; it goes on once they are back or overdue, `cut_settled`)
        (None: none waits)."""
        return self.settling_by() if self._resume_waits else None

    def _go_on(self) -> None:
        self._hold = HoldState.FLOWING
        self._resumed = self._pending.held_bytes > 0
        self._resume_waits = False

    # --- queries (change nothing) ----------------------------------------------

    def holds_back(self) -> bool:
        """Whether a hold keeps audio of the answer back (held here, or still to come
        from the model): what a resume would send on."""
        if self._hold is HoldState.FLOWING:
            return False
        return bool(self._pending.held_bytes) or any(not item.done for item in self._gen_items)

    def speaking_reason(self, now: float) -> SpeakingReason | None:
        """Which rule says the AI is being heard at `now` (see `rules.speaking_reason`)."""
        return speaking_reason(
            self._timing,
            self._slack(),
            now,
            self._end.deadline,
            self._marks.outstanding,
            self._pending.held_bytes,
            self._last_audio_at,
            self.holds_back(),
        )

    def is_speaking(self, now: float) -> bool:
        """Whether the caller is (or may still be) hearing the AI at `now`."""
        return self.speaking_reason(now) is not None

    def deadline_offset_ms(self, now: float) -> int | None:
        """deadline - now in ms: > 0 still playing, <= 0 ended that long ago; None: no deadline."""
        if self._end.deadline is None:
            return None
        return seconds_to_ms(self._end.deadline - now)

    def playout_remaining_ms(self, now: float) -> int:
        """Ms until the deadline (0 if passed or none)."""
        offset = self.deadline_offset_ms(now)
        return 0 if offset is None else max(0, offset)

    def playout_status(self, now: float) -> str:
        """`playout_active_<N>ms`, `playout_ended_<N>ms_ago` or `no_playout_ts` (see `status`)."""
        return format_playout_status(self.deadline_offset_ms(now))

    def heard_ms(self, item_id: str, now: float) -> int:
        """Ms of the item's audio the caller had heard by `now` (0 for an unknown item).

        `now` may lie in the past, back to the last cancel; audio a cancel
        threw away never counts.
        """
        item = self._items.get(item_id)
        if item is None:
            return 0
        return item.heard_bytes(self._heard.position(now)) // BYTES_PER_MS

    def audible(self, now: float) -> bool:
        """Whether AI audio is reaching the caller at `now`, by the estimate.

        On the clock of our sends, like every answer here: the caller's ear
        lags it by one way. False in a pause (after its clear) and in a hold
        once the audio sent has played out.
        """
        return self._heard.playing(now)

    def heard_audio(self, start: float, end: float) -> bytes:
        """The mu-law audio the caller heard over [start, end), for echo detection.

        Exactly `round((end - start) x 8000)` bytes: at each sample time
        `start + k / 8000`, the byte of AI audio the estimate (as it stood
        then) says was playing, and silence (0xFF) where nothing was:
        before a run, between runs, after a clear cut it. Times are on the
        clock of our sends (shift the caller's audio back by the round trip
        to compare). Audio played more than `history_ms` before the latest
        input may read as silence. A few slices of kept bytes, no per-sample work.
        """
        count = round((end - start) * BYTES_PER_SECOND)
        if count <= 0:
            return b""
        return self._history.render(self._heard.lines(start, end), start, count)

    def playing_item(self, now: float) -> str | None:
        """The item of the last audio heard by `now` in the live generation, None if none."""
        pos = self._heard.position(now)
        if pos <= self._gen_start_pos:
            return None
        item = self._ledger.item_at(pos - 1)
        return None if item is None else item.item_id

    def sends_due(self, now: float) -> bool:
        """Whether a `poll` at `now` would hand out a frame or a mark."""
        if self._mark_due:
            return True
        at = self.next_send_at()
        return at is not None and at <= now + _EPSILON_S

    def next_send_at(self) -> float | None:
        """When the next frame may go out (None: nothing sendable; it may be in the past)."""
        size = self._pending.next_frame_size()
        if not size or self._hold is HoldState.PAUSED:
            return None
        timing = self._timing
        sent_end = self._end.sent_end(self._ledger.sent_pos)
        if self._hold is HoldState.HELD:
            start = self._now if sent_end is None else max(sent_end, self._now)
            if self._size_by_horizon(start, size) == 0:
                return None  # it would play after the hold's `until` (later, later still)
        if sent_end is None or sent_end <= self._now:
            # The player is dry: this starts a run (see `start_hold_ms`).
            if (
                self._resumed
                or self._pending.held_bytes >= timing.start_fill_bytes
                or size < self.config.frame_bytes  # the item's last, short frame
                or self._pending.head_item_done()
            ):
                return self._now
            return max(self._now, self._held_since + timing.start_hold_s)
        # Wait until Twilio holds lead - refill, then top it up (see `refill_ms`).
        return sent_end + max(size / BYTES_PER_SECOND, timing.refill_s) - timing.lead_s

    def next_deadline(self) -> float | None:
        """The next time the shell should call `poll` (and re-check its queries).

        Relative to the latest `now` any input carried; equal to it when a
        frame is due at once; None when nothing will change without input.
        Asked after every input of a call (50 a second of caller audio alone),
        it is worked out once per input of the tracker's.
        """
        if self._wakeup is None:
            self._wakeup = (self._next_wakeup(),)
        return self._wakeup[0]

    def _next_wakeup(self) -> float | None:
        if self._mark_due:
            return self._now  # an end mark is ready to go
        wakeup = next_wakeup(
            self._timing,
            self._slack(),
            self._now,
            self.next_send_at(),
            self._end.deadline,
            self._marks.outstanding,
            self._pending.held_bytes,
            self._last_audio_at,
        )
        if self._resume_waits:
            settle = self.settle_deadline()
            if settle is not None and (wakeup is None or settle < wakeup):
                return settle
        return wakeup

    def drain_status(self, now: float) -> DrainStatus:
        """Whether a hangup may go ahead without cutting the last audio (see `DrainStatus`)."""
        pending = self._pending.held_bytes
        open_items = sum(1 for item in self._gen_items if not item.done)
        deadline = self._end.deadline
        # The final echo is due a round trip after the deadline; then the margin.
        safety = (
            None
            if deadline is None
            else deadline + self._slack().echo_s + self._timing.drain_margin_s
        )
        final_echoed = self._confirmed_pos >= self._ledger.sent_pos
        return DrainStatus(
            done=drain_done(now, pending, open_items, final_echoed, safety),
            pending_bytes=pending,
            pending_ms=pending // BYTES_PER_MS,
            open_items=open_items,
            deadline=deadline,
            final_mark_echoed=final_echoed,
            safety_deadline=safety,
            # Before the first frame goes out there is no deadline yet, but the
            # held audio will still take its own length to play.
            expected_wait_ms=max(self.playout_remaining_ms(now), pending // BYTES_PER_MS),
            safety_wait_ms=0 if safety is None else max(0, seconds_to_ms(safety - now)),
        )

    def snapshot(self, now: float, *, held_back: bool = False) -> PlayoutSnapshot:
        """Evidence for logs (see `PlayoutSnapshot`). `held_back`: while held, the audio the
        hold keeps here counts in `playout_remaining_ms` (the deadline leaves it out):
        what a caller whose answer was held, then paused or cut, was kept from hearing."""
        sent_pos = self._ledger.sent_pos
        offset = self.deadline_offset_ms(now)
        remaining = 0 if offset is None else max(0, offset)
        if held_back and self._hold is HoldState.HELD:
            remaining += self._pending.held_bytes // BYTES_PER_MS
        last_audio = self._last_audio_at
        return PlayoutSnapshot(
            generation=self._generation,
            pending_frames=self._pending.frame_count(),
            pending_ms=self._pending.held_bytes // BYTES_PER_MS,
            unplayed_ms=(sent_pos - self._heard.position(now)) // BYTES_PER_MS,
            sent_ms=(sent_pos - self._gen_start_pos) // BYTES_PER_MS,
            outstanding_marks=self._marks.outstanding,
            deadline=self._end.deadline,
            deadline_offset_ms=offset,
            playout_remaining_ms=remaining,
            playout_status=format_playout_status(offset),
            next_send_at=self.next_send_at(),
            model_audio_age_ms=None if last_audio is None else seconds_to_ms(now - last_audio),
            speaking_reason=self.speaking_reason(now),
            link_rtt_ms=seconds_to_ms(self.link.rtt_s),
            link_jitter_ms=seconds_to_ms(self.link.jitter_s),
            hold=self._hold,
        )

    # --- internals ---------------------------------------------------------------

    def _slack(self) -> Slack:
        link = self.link
        return Slack.of(self._timing, link.one_way_s, link.rtt_s, link.jitter_s)

    def _advance(self, now: float) -> float:
        """Every input's first step: the time moves on (never back), and whatever the input
        changes, the next deadline is worked out again."""
        self._wakeup = None
        if now > self._now:
            self._now = now
        return self._now

    def _new_response(self, response_id: str) -> ResponseAudio:
        response = ResponseAudio(response_id, self._generation)
        self._responses[response_id] = response
        self._gen_responses.append(response)
        return response

    def _close_item(self, item: ItemAudio) -> None:
        if item.done:
            return
        item.done = True
        # With audio still held, the end mark follows its last frame in `poll`.
        if item.pending_bytes == 0 and item.sent_bytes > 0:
            self._mark_due = True

    def _place_mark(self, now: float, out: list[Outbound]) -> MarkOut | None:
        self._mark_due = False
        pos = self._ledger.sent_pos
        sent_end = self._end.sent_end(pos)
        if pos == self._mark_pos or sent_end is None:
            return None  # a mark already follows the last byte sent
        item = self._ledger.item_at(pos - 1)
        mark = self._marks.place(
            self._generation,
            pos,
            now,
            # Its echo is one round trip after the later of its audio's end and its own
            # send (a mark sent after its audio played echoes as soon as it arrives).
            max(sent_end, now),
            item.response_id if item else "",
            item.item_id if item else "",
            clean=self._fresh_run,
        )
        self._fresh_run = False
        self._mark_pos = pos
        placed = MarkOut(mark.name, mark.generation, self._epoch)
        out.append(placed)
        return placed
