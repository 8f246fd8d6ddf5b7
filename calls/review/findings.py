"""Per-call findings from plain rows: barge-ins, caller sounds, drains, estimate quality,
suspect rules.

Pure: no queries and no clock; `calls.review.diagnostics` loads the rows and passes
`now`. Durations are integer milliseconds unless a name says otherwise.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from callcore.records import FINAL_STATES, CallState, EndReason, FindingRule, RecordKind
from callcore.turns import Verdict
from calls.review.actions import tool_span_ms
from calls.review.sounds import (
    AnswerPause,
    PauseOutcome,
    TurnVerdict,
    answer_pauses,
    turn_verdicts,
)

_ENDED_AGO = re.compile(r"^playout_ended_(\d+)ms_ago$")
_ACTIVE = re.compile(r"^playout_active_(\d+)ms$")

LogRow = tuple[int, str, int, str, Mapping[str, Any]]
"""(call_id, kind, offset_ms, playout_status, details), as `values_list` yields it."""


@dataclass(frozen=True)
class Thresholds:
    """What counts as suspect. Durations in milliseconds."""

    # Without a known speech onset: the VAD reports speech a few hundred ms after
    # it began, so speech reported this soon after the end may have begun before it.
    suspect_window_ms: int = 500
    slow_reaction_ms: float = 50.0
    stale_streaming: timedelta = timedelta(hours=1)
    # A link to Twilio this slow (round trip p95) or this unstable (jitter) makes
    # every placement of the caller less certain.
    slow_link_ms: int = 400
    unstable_link_ms: int = 80
    # The caller heard this much silence in an answer paused while their sound was judged.
    long_resume_gap_ms: int = 300
    # A caller who interrupted went on hearing the AI this long after they began.
    late_interruption_ms: int = 450


@dataclass(frozen=True)
class BargeIn:
    """What the review reads of a barge-in's `BargeInEvent` row: where it happened, and
    the figures the core recorded (`callcore.records.BargeInFigures`, same names)."""

    offset_ms: int
    response_id: str
    playout_remaining_ms: int
    audio_end_ms: int | None
    reaction_ms: float
    pending_ms: int
    unplayed_ms: int
    response_cancelled: bool
    heard_text: str = ""
    cut_text: str = ""


# The columns a review reads of each barge-in: its call's, and the review's own fields.
BARGE_IN_FIELDS = ("call_id", *(column.name for column in fields(BargeIn)))


@dataclass(frozen=True)
class Link:
    """The network between us and Twilio's player, as the call measured it (ms)."""

    rtt_p50_ms: int | None
    rtt_p95_ms: int | None
    jitter_ms: int | None
    samples: int
    estimate_error_p95_ms: int | None


@dataclass(frozen=True)
class SilentSpeech:
    """Caller speech the bridge judged to be over silence."""

    offset_ms: int
    playout_status: str
    ms_since_playout_end: int | None
    playout_active: bool
    # Where the caller's speech really began, relative to the playout end
    # (negative: while the AI was still heard); None when the onset is unknown.
    onset_ms_after_playout_end: int | None = None


@dataclass(frozen=True)
class Drain:
    """One hangup drain; `outcome` is "completed", "cancelled" or "incomplete".

    A transfer's drain (the call ends so that Twilio dials a person) names its
    `transfer_target`, "name (number)" as far as the rows tell; a hangup's has "".
    """

    started_offset_ms: int | None
    ended_offset_ms: int | None
    outcome: str
    expected_wait_ms: int | None
    actual_wait_ms: int | None
    final_mark_echoed: bool | None
    cut_off_ms: int | None
    cancel_reason: str = ""
    end_reason: str = ""  # why the call was to end, as the drain's start recorded it
    transfer_target: str = ""


@dataclass(frozen=True)
class ToolCall:
    """A tool the agent called: when it started, how it went, and the bridge's own times
    around it. `dispatch_ms`: its arguments complete to the function started; `reply_ms`:
    the function returned to its output (and the request for an answer) sent."""

    offset_ms: int  # when it started
    call_id: str
    name: str
    outcome: str  # ok, error, timeout, invalid_arguments, unknown_tool or not_run
    duration_ms: int
    dispatch_ms: float | None
    reply_ms: float | None
    error: str = ""
    caller_spoke: bool = False  # the caller spoke while it ran
    answer_asked: bool = False  # the model was asked to answer with its result


@dataclass(frozen=True)
class EstimateQuality:
    """Playout estimate vs mark echoes. Error = echo time minus estimated end, in ms."""

    marks: int
    median_error_ms: float | None
    p95_abs_error_ms: int | None
    median_round_trip_ms: float | None
    p95_round_trip_ms: int | None


@dataclass(frozen=True)
class Suspect:
    """A likely fault: which `FindingRule`, where in the call, and why."""

    rule: str
    offset_ms: int | None
    message: str


@dataclass(frozen=True)
class CallDiagnostics:
    """Everything the review shows for one call; lists are in offset order."""

    call_sid: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str
    responses: int
    ai_audio_ms: int
    agent_name: str = ""
    transfer_target: str = ""  # where a transferred call was handed: its target's name
    barge_ins: list[BargeIn] = field(default_factory=list)
    silent_speech: list[SilentSpeech] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    turn_verdicts: list[TurnVerdict] = field(default_factory=list)  # by when each was judged
    pauses: list[AnswerPause] = field(default_factory=list)  # by when each began
    drains: list[Drain] = field(default_factory=list)
    quality: EstimateQuality | None = None
    link: Link | None = None
    suspects: list[Suspect] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO 8601 strings, everything else as is."""
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        return data


def diagnose_call(
    call: Mapping[str, Any],
    barge_in_rows: Sequence[Mapping[str, Any]],
    log_rows: Sequence[LogRow],
    thresholds: Thresholds,
    now: datetime,
) -> CallDiagnostics:
    """Figures and suspects for one call; pure.

    `call` has the `calls.review.diagnostics.CALL_FIELDS` keys, `barge_in_rows` the
    `BARGE_IN_FIELDS` keys, and both row lists must be in offset order.
    """
    barge_ins = [BargeIn(**{k: row[k] for k in BARGE_IN_FIELDS[1:]}) for row in barge_in_rows]
    silent = [
        _silent_speech(offset, status, details)
        for _, kind, offset, status, details in log_rows
        if kind == RecordKind.USER_SPEECH_AI_SILENT
    ]
    drains = _drains(log_rows, call.get("transfer_target") or "")
    diagnostics = CallDiagnostics(
        call_sid=call["call_sid"],
        status=call["status"],
        started_at=call["started_at"],
        ended_at=call["ended_at"],
        end_reason=call["end_reason"],
        responses=call["responses"],
        ai_audio_ms=call["ai_audio_ms"],
        agent_name=call.get("agent_name") or "",
        transfer_target=call.get("transfer_target") or "",
        barge_ins=barge_ins,
        silent_speech=silent,
        tool_calls=[
            _tool_call(offset, details)
            for _, kind, offset, _, details in log_rows
            if kind == RecordKind.TOOL_CALL
        ],
        turn_verdicts=turn_verdicts(_kind_rows(log_rows)),
        pauses=answer_pauses(_kind_rows(log_rows)),
        drains=drains,
        quality=_quality(
            details for _, kind, _, _, details in log_rows if kind == RecordKind.MARK_STATS
        ),
        link=_link(call),
    )
    return replace(diagnostics, suspects=list(_suspects(call, diagnostics, thresholds, now)))


def _kind_rows(log_rows: Sequence[LogRow]) -> list[tuple[str, int, Mapping[str, Any]]]:
    return [(kind, offset, details) for _, kind, offset, _, details in log_rows]


def _link(call: Mapping[str, Any]) -> Link | None:
    if not call.get("link_samples"):
        return None
    return Link(
        rtt_p50_ms=call.get("link_rtt_p50_ms"),
        rtt_p95_ms=call.get("link_rtt_p95_ms"),
        jitter_ms=call.get("link_jitter_ms"),
        samples=call["link_samples"],
        estimate_error_p95_ms=call.get("estimate_error_p95_ms"),
    )


def _silent_speech(offset_ms: int, status: str, details: Mapping[str, Any]) -> SilentSpeech:
    since_end = details.get("ms_since_playout_end")
    if since_end is None and (match := _ENDED_AGO.match(status)):
        since_end = int(match[1])
    return SilentSpeech(
        offset_ms=offset_ms,
        playout_status=status,
        ms_since_playout_end=since_end,
        playout_active=bool(_ACTIVE.match(status)),
        onset_ms_after_playout_end=details.get("onset_ms_after_playout_end"),
    )


def _drains(log_rows: Sequence[LogRow], call_transfer_target: str) -> list[Drain]:
    """The drains in order; a transfer's names its target: the last one asked for before
    it, else (it ended the call) the call's own."""
    drains: list[Drain] = []
    started: tuple[int, Mapping[str, Any]] | None = None
    asked = ""  # the target of the last transfer asked for: "name (number)"
    for _, kind, offset, _, details in log_rows:
        if kind == RecordKind.TRANSFER_REQUESTED:
            target, number = details.get("target") or "?", details.get("number")
            asked = f"{target} ({number})" if number else str(target)
        elif kind == RecordKind.DRAIN_STARTED:
            if started is not None:
                drains.append(_drain(started, None, "incomplete", {}, asked))
            started = (offset, details)
        elif kind == RecordKind.DRAIN_COMPLETED:
            drains.append(
                _drain(started, offset, "completed", details, asked or call_transfer_target)
            )
            started, asked = None, ""
        elif kind == RecordKind.HANGUP_CANCELLED:  # before its drain began: no drain
            if started is not None:
                drains.append(_drain(started, offset, "cancelled", details, asked))
            started, asked = None, ""
    if started is not None:
        drains.append(_drain(started, None, "incomplete", {}, asked))
    return drains


def _drain(
    started: tuple[int, Mapping[str, Any]] | None,
    ended_offset_ms: int | None,
    outcome: str,
    details: Mapping[str, Any],
    transfer_target: str,
) -> Drain:
    start_offset, start_details = started if started else (None, {})
    completed = outcome == "completed"
    end_reason = start_details.get("end_reason") or ""
    # A barge-in that cancels a transfer names it; a drain that began for one says so.
    cancelled_transfer = details.get("transfer_target") if outcome == "cancelled" else None
    if cancelled_transfer and not transfer_target:
        transfer_target = str(cancelled_transfer)
    transferring = end_reason == EndReason.TRANSFERRED or bool(cancelled_transfer)
    return Drain(
        started_offset_ms=start_offset,
        ended_offset_ms=ended_offset_ms,
        outcome=outcome,
        expected_wait_ms=details.get("expected_wait_ms", start_details.get("expected_wait_ms")),
        actual_wait_ms=details.get("actual_wait_ms") if completed else None,
        final_mark_echoed=details.get("final_mark_echoed") if completed else None,
        cut_off_ms=details.get("cut_off_ms") if completed else None,
        cancel_reason=details.get("reason", "") if outcome == "cancelled" else "",
        end_reason=end_reason,
        transfer_target=(transfer_target or "?") if transferring else "",
    )


def _tool_call(offset_ms: int, details: Mapping[str, Any]) -> ToolCall:
    started, ended = tool_span_ms(offset_ms, details)
    return ToolCall(
        offset_ms=started,
        call_id=str(details.get("call_id") or ""),
        name=str(details.get("name") or "?"),
        outcome=str(details.get("outcome") or "?"),
        duration_ms=ended - started,
        dispatch_ms=_figure(details.get("dispatch_ms")),
        reply_ms=_figure(details.get("reply_ms")),
        error=str(details.get("error") or ""),
        caller_spoke=bool(details.get("caller_spoke")),
        answer_asked=bool(details.get("answer_asked")),
    )


def _figure(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _quality(stats: Iterable[Mapping[str, Any]]) -> EstimateQuality | None:
    errors: list[int] = []
    round_trips: list[int] = []
    for details in stats:
        errors.extend(details.get("estimate_error_ms") or ())
        round_trips.extend(details.get("round_trip_ms") or ())
    if not errors and not round_trips:
        return None
    return EstimateQuality(
        marks=max(len(errors), len(round_trips)),
        median_error_ms=statistics.median(errors) if errors else None,
        p95_abs_error_ms=percentile([abs(e) for e in errors], 95),
        median_round_trip_ms=statistics.median(round_trips) if round_trips else None,
        p95_round_trip_ms=percentile(round_trips, 95),
    )


def percentile(values: Sequence[int], pct: float) -> int | None:
    """Nearest-rank percentile (a value that occurred); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _suspects(
    call: Mapping[str, Any], diag: CallDiagnostics, thresholds: Thresholds, now: datetime
) -> Iterable[Suspect]:
    for speech in diag.silent_speech:
        if speech.playout_active:
            yield Suspect(
                FindingRule.MISSED_BARGE_IN,
                speech.offset_ms,
                f"speech judged AI silent while the estimate said {speech.playout_status}",
            )
        elif speech.onset_ms_after_playout_end is not None:
            if speech.onset_ms_after_playout_end < 0:
                yield Suspect(
                    FindingRule.MISSED_BARGE_IN,
                    speech.offset_ms,
                    f"speech began {-speech.onset_ms_after_playout_end} ms before playout "
                    "ended but was judged AI silent",
                )
        elif (
            speech.ms_since_playout_end is not None
            and speech.ms_since_playout_end <= thresholds.suspect_window_ms
        ):
            yield Suspect(
                FindingRule.MISSED_BARGE_IN,
                speech.offset_ms,
                f"speech judged AI silent {speech.ms_since_playout_end} ms after playout ended",
            )
    for drain in diag.drains:
        if drain.outcome == "completed" and drain.final_mark_echoed is False:
            yield Suspect(
                FindingRule.DRAIN_BEFORE_FINAL_MARK,
                drain.ended_offset_ms,
                f"drain ended before the final mark echo ({drain.cut_off_ms or 0} ms cut off)",
            )
    for barge_in in diag.barge_ins:
        if barge_in.reaction_ms > thresholds.slow_reaction_ms:
            yield Suspect(
                FindingRule.SLOW_REACTION,
                barge_in.offset_ms,
                f"barge-in reaction {barge_in.reaction_ms:.1f} ms "
                f"(> {thresholds.slow_reaction_ms:g} ms)",
            )
    yield from _sound_suspects(diag, thresholds)
    link = diag.link
    if link is not None:
        if link.rtt_p95_ms is not None and link.rtt_p95_ms > thresholds.slow_link_ms:
            yield Suspect(
                FindingRule.SLOW_LINK,
                None,
                f"link to Twilio slow: round trip p95 {link.rtt_p95_ms} ms "
                f"(> {thresholds.slow_link_ms} ms)",
            )
        elif link.jitter_ms is not None and link.jitter_ms > thresholds.unstable_link_ms:
            yield Suspect(
                FindingRule.SLOW_LINK,
                None,
                f"link to Twilio unstable: jitter {link.jitter_ms} ms "
                f"(> {thresholds.unstable_link_ms} ms)",
            )
    if call["ended_at"] is None:
        opened = call["stream_started_at"] or call["started_at"]
        if call["status"] in FINAL_STATES:
            yield Suspect(
                FindingRule.MISSING_ENDED_AT, None, f"status {call['status']} but no ended_at"
            )
        elif call["status"] == CallState.STREAMING and now - opened > thresholds.stale_streaming:
            yield Suspect(
                FindingRule.MISSING_ENDED_AT,
                None,
                f"still streaming {_age(now - opened)} after it started",
            )


def _sound_suspects(diag: CallDiagnostics, thresholds: Thresholds) -> Iterable[Suspect]:
    """Caller sounds: a long silence in an answer paused for one, an interruption the caller
    went on hearing the AI through."""
    for verdict in diag.turn_verdicts:
        stopped = verdict.stopped_hearing_ms
        if (
            verdict.verdict == Verdict.INTERRUPTION
            and verdict.interruptible
            and stopped is not None
            and stopped > thresholds.late_interruption_ms
        ):
            yield Suspect(
                FindingRule.LATE_INTERRUPTION,
                verdict.offset_ms,
                f"the caller heard the AI for {stopped} ms after they began to interrupt "
                f"(> {thresholds.late_interruption_ms} ms; decided by {verdict.decided_by} "
                f"in {verdict.decision_ms} ms)",
            )
    for pause in diag.pauses:
        gap = pause.gap_ms
        resumed = pause.outcome == PauseOutcome.RESUMED
        if resumed and gap is not None and gap > thresholds.long_resume_gap_ms:
            waited = (
                f"; {pause.waits_ms} ms of it waiting for the clear's marks"
                if pause.waits_ms
                else ""
            )
            yield Suspect(
                FindingRule.LONG_RESUME_GAP,
                pause.ended_offset_ms,
                f"answer resumed after {gap} ms of silence (> {thresholds.long_resume_gap_ms} ms)"
                + waited,
            )


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"
