"""The process's beat: its calls marked alive, lost calls ended, ended calls reviewed.

A thread of its own, started with the process (a process that never takes a
call still ends the calls of one that died), with its own database
connection, off the event loop. Every `interval_s` it marks the calls the
process holds alive and ends other processes' calls nobody has marked for
`lost_after_s` (`calls.live.liveness`), then catches up a few ended calls
that have no stored review. Told by the record writer that a call's end was
written (`review_soon`), it stores that call's review at once
(`calls.review.stored`).

After a database outage nobody could mark their calls, so the beat reaps
nothing until `lost_after_s` after the database came back to it. Failures
are a line when they start and one when they end, never a traceback a beat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection

from calls.live.liveness import mark_alive, reap_lost_calls
from calls.review.stored import review_calls, review_pending

logger = logging.getLogger(__name__)

# Ended calls without a stored review that each beat catches up (a few, off the audio path).
REVIEWS_PER_BEAT = 20


def _transient(exc: BaseException) -> bool:
    """The database unreachable, locked or restarting: worth trying again as is."""
    return isinstance(exc, OperationalError | InterfaceError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


class Beat:
    """`held` gives the pks of the calls this process holds (from any thread); `mark` and
    `reap` are the liveness queries (`calls.live.liveness`), `review` stores calls'
    reviews and `catch_up` finds and reviews a few that have none (`calls.review.stored`).
    """

    def __init__(
        self,
        held: Callable[[], list[int]],
        *,
        interval_s: float,
        lost_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        mark: Callable[[list[int]], object] = mark_alive,
        reap: Callable[[list[int], float], object] = reap_lost_calls,
        review: Callable[[list[int]], object] = review_calls,
        catch_up: Callable[[int, set[int]], set[int]] = review_pending,
    ) -> None:
        self._held = held
        self._mark = mark
        self._reap = reap
        self._review = review
        self._catch_up_reviews = catch_up
        self.interval_s = interval_s
        self.lost_after_s = lost_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._to_review: set[int] = set()
        # Calls whose review failed for a reason other than the database: not tried
        # again by this process (`manage.py review_calls` does).
        self.unreviewable: set[int] = set()
        self._last_beat: float | None = None
        # When the database came back after the beat could not reach it (None: it never
        # failed): no call is taken for lost until `lost_after_s` after that.
        self._db_back_at: float | None = None
        self._failing = False
        self._review_failing = False

    # --- from any thread ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="call-beat", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout_s)

    def review_soon(self, call_pks: set[int]) -> None:
        """These calls' final records are written: store their reviews now."""
        with self._lock:
            self._to_review |= call_pks
        self._wake.set()

    # --- the beat's thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = self._clock()
                due = self._last_beat is None or now - self._last_beat >= self.interval_s
                if due:
                    self._last_beat = now
                    self.beat(now)
                self.review_ended()
                wait_s = self.interval_s - (self._clock() - (self._last_beat or 0.0))
                self._wake.wait(max(0.0, wait_s))
                self._wake.clear()
            # Stopping: the calls whose ends the writer's last write stored get theirs.
            self.review_ended()
        finally:
            connection.close()

    def beat(self, now: float) -> None:
        """Our calls are alive; others' that are not are ended; a few reviews caught up."""
        back_at = now if self._failing else self._db_back_at  # back now, if this works
        may_reap = back_at is None or now - back_at >= self.lost_after_s
        try:
            self._mark(self._held())
            if may_reap:
                self._reap(self._held(), self.lost_after_s)
        except Exception as exc:
            connection.close()
            if not self._failing:
                logger.warning(
                    "liveness beat failed (%s: %s); retrying every %.0f s",
                    type(exc).__name__,
                    _first_line(exc),
                    self.interval_s,
                )
            self._failing = True
            return
        if self._failing:
            logger.info(
                "liveness beat back: lost calls are reaped again in %.0f s", self.lost_after_s
            )
            self._failing = False
            self._db_back_at = now
        self._catch_up()

    def _catch_up(self) -> None:
        try:
            self.unreviewable |= self._catch_up_reviews(REVIEWS_PER_BEAT, self.unreviewable)
        except Exception:  # the liveness above is done; the catch-up waits for the next beat
            connection.close()
            logger.warning("review catch-up failed; retrying next beat", exc_info=True)

    def review_ended(self) -> None:
        """Store the review of the calls whose end was written.

        A failure leaves them for the next attempt, and their records
        untouched: the review is recomputed from them whenever it runs. One
        call whose rows the review cannot read holds back no other.
        """
        with self._lock:
            pks, self._to_review = sorted(self._to_review), set()
        if not pks:
            return
        try:
            self._review(pks)
        except Exception as exc:
            connection.close()
            if _transient(exc):
                self._retry_reviews(pks, exc)
                return
            for index, pk in enumerate(pks):
                try:
                    self._review([pk])
                except Exception as one:
                    connection.close()
                    if _transient(one):
                        self._retry_reviews(pks[index:], one)  # the database is away
                        return
                    self.unreviewable.add(pk)
                    logger.error(
                        "review of call %d failed (%s: %s): left unreviewed",
                        pk,
                        type(one).__name__,
                        _first_line(one),
                    )
        if self._review_failing:
            logger.info("reviews of ended calls stored again")
            self._review_failing = False

    def _retry_reviews(self, pks: list[int], exc: BaseException) -> None:
        """The database refused these reviews: they wait for the next beat."""
        with self._lock:
            self._to_review.update(pks)
        if not self._review_failing:
            logger.warning(
                "review of %d ended call(s) not stored yet (%s: %s); retrying",
                len(pks),
                type(exc).__name__,
                _first_line(exc),
            )
        self._review_failing = True
