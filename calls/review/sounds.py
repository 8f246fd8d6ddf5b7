"""The caller's sounds while the AI had the turn, as the bridge judged them, and the pauses of
the answer while it judged, read from the playout log.

Pure, like `calls.review.actions`: rows in, figures and `Event`s out. A `turn_verdict` row
says what one sound was (backchannel, noise, echo or interruption), what settled it and how
soon after the caller began; `answer_paused` and `answer_resumed` rows say when the caller
stopped hearing the answer while a sound was judged, and how long the silence was. The
figures are what `calls.review.findings` judges and `calls.review.report` lists; the events
are the timeline's "caller sounds" lane, and the pauses drawn over the AI's audio.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from callcore.records import RecordKind
from callcore.turns import DecidedBy, Verdict
from calls.review.event import Event, TimelineRow, at_s, detail_int, detail_str, join_lines

VERDICTS = tuple(Verdict)  # in the order a count lists them
# What settled a verdict, in words.
DECIDED_BY: dict[str, str] = {
    DecidedBy.LENGTH: "by its length",
    DecidedBy.STOP_WORDS: "by a stop phrase",
    DecidedBy.WORDS: "by its words",
    DecidedBy.BACKCHANNEL_WORDS: "by its words",
    DecidedBy.NO_WORDS: "as its transcript was empty",
    DecidedBy.NOT_SPEECH: "as the service heard no speech in it",
    DecidedBy.SHORT: "as it was short and no words came in time",
    DecidedBy.ECHO: "as the AI's own voice coming back",
    DecidedBy.REPLY: "as a reply: its words came once the AI had finished",
}
WORDS_CHARS = 120  # of the caller's words in a sentence; the row has them all

KindRow = tuple[str, int, Mapping[str, object]]
"""(kind, offset_ms, details): a playout-log row, whichever columns came with it."""


@dataclass(frozen=True)
class TurnVerdict:
    """One sound the caller made while the AI had the turn, judged at `offset_ms`.

    Offsets are ms since the stream started; `decision_ms` is from the sound's onset
    (`speech_onset_offset_ms`) to the verdict; `stopped_hearing_ms`, an interruption's, from the
    onset to when the caller stopped hearing the AI (None: not recorded). `interruptible`
    False: the sound came during a passage heard whole, which went on.
    """

    offset_ms: int
    verdict: str
    decided_by: str
    decision_ms: int
    speech_onset_offset_ms: int
    voice_ms: int | None
    words: str
    paused: bool
    interruptible: bool
    stopped_hearing_ms: int | None = None
    sounds: int | None = None
    voice_frames: int | None = None
    echo_frames: int | None = None
    item_ids: tuple[str, ...] = ()


class PauseOutcome(enum.StrEnum):
    """How a pause of the answer ended."""

    RESUMED = "resumed"  # the sound was not an interruption: the answer went on
    INTERRUPTED = "interrupted"  # it was: the answer ended there
    OPEN = "open"  # never resumed (the call ended, or another pause began)


@dataclass(frozen=True)
class AnswerPause:
    """The answer stopped while a caller's sound was judged, and how it went on.

    `outcome`: resumed at `ended_offset_ms` after `gap_ms` of silence the caller heard
    (from the pause to the resumed audio; `waits_ms` of it the resume waited for the
    pause's clear to come back and say where the caller stopped), interrupted (the answer ended at
    `ended_offset_ms`), or open (never resumed; `ended_offset_ms` None). A resume whose
    pause was not logged has `paused_offset_ms` None. `heard_ms` is how much of item
    `item_id` the caller had heard at the pause, `requeued_ms` the audio taken back to be
    sent again. `cleared`: Twilio was cleared (the hold at the stop target came too
    late), or not (the held answer ran out `stop_in_ms` after the pause; negative: it
    had run out that long before); None in rows from before holds.
    """

    paused_offset_ms: int | None
    outcome: PauseOutcome
    ended_offset_ms: int | None
    gap_ms: int | None = None
    item_id: str = ""
    heard_ms: int | None = None
    requeued_ms: int | None = None
    cleared: bool | None = None
    stop_in_ms: int | None = None
    waits_ms: int | None = None


def turn_verdict(offset_ms: int, details: Mapping[str, object]) -> TurnVerdict:
    """A `turn_verdict` row's figures. Its onset, when not recorded, is the verdict's
    offset less its decision time, and never after the verdict."""
    decision_ms = max(detail_int(details, "decision_ms") or 0, 0)
    onset = detail_int(details, "speech_onset_offset_ms")
    onset = offset_ms - decision_ms if onset is None else onset
    listed = details.get("item_ids")
    return TurnVerdict(
        offset_ms=offset_ms,
        verdict=detail_str(details, "verdict") or "?",
        decided_by=detail_str(details, "decided_by") or "?",
        decision_ms=decision_ms,
        speech_onset_offset_ms=max(0, min(onset, offset_ms)),
        voice_ms=detail_int(details, "voice_ms"),
        words=" ".join(detail_str(details, "words").split()),
        paused=details.get("paused") is True,
        interruptible=details.get("interruptible") is not False,
        stopped_hearing_ms=detail_int(details, "stopped_hearing_ms"),
        sounds=detail_int(details, "sounds"),
        voice_frames=detail_int(details, "voice_frames"),
        echo_frames=detail_int(details, "echo_frames"),
        item_ids=tuple(str(i) for i in listed) if isinstance(listed, list) else (),
    )


def turn_verdicts(rows: Iterable[KindRow]) -> list[TurnVerdict]:
    """The verdicts among the rows, in their order."""
    return [turn_verdict(offset, d) for kind, offset, d in rows if kind == RecordKind.TURN_VERDICT]


def answer_pauses(rows: Iterable[KindRow]) -> list[AnswerPause]:
    """The answer's pauses, each with how it ended, in the order they began.

    A pause ends at the next resume, or at a verdict that the sound was an interruption
    that cuts the answer; a pause that follows one never ended leaves that one open.
    """
    pauses: list[AnswerPause] = []
    open_: tuple[int, Mapping[str, object]] | None = None
    for kind, offset, details in rows:
        if kind == RecordKind.ANSWER_PAUSED:
            if open_ is not None:
                pauses.append(_pause(open_, PauseOutcome.OPEN, None))
            open_ = (offset, details)
        elif kind == RecordKind.ANSWER_RESUMED:
            gap, waits = detail_int(details, "gap_ms"), detail_int(details, "waits_ms")
            if open_ is None:
                pauses.append(AnswerPause(None, PauseOutcome.RESUMED, offset, gap, waits_ms=waits))
            else:
                pauses.append(_pause(open_, PauseOutcome.RESUMED, offset, gap, waits))
            open_ = None
        elif open_ is not None and _cuts_the_answer(kind, details):
            pauses.append(_pause(open_, PauseOutcome.INTERRUPTED, offset))
            open_ = None
    if open_ is not None:
        pauses.append(_pause(open_, PauseOutcome.OPEN, None))
    return pauses


def verdict_words(v: TurnVerdict) -> str:
    """A verdict in a sentence: `Caller said “uh-huh” (360 ms): backchannel, by its words,
    decided 1.2 s after they began; the answer went on`."""
    if v.words:
        who, they = f"Caller said “{_cut(v.words, WORDS_CHARS)}”", "they"
    elif v.verdict == Verdict.ECHO:
        who, they = "A sound on the caller's line", "it"
    else:
        who, they = "Caller made a sound", "they"
    voice = "" if v.voice_ms is None else f" ({span(v.voice_ms)})"
    how = DECIDED_BY.get(v.decided_by, f"by {v.decided_by}")
    return (
        f"{who}{voice}: {v.verdict}, {how}, decided {span(v.decision_ms)} after {they} began; "
        f"{_what_followed(v, they)}"
    )


def pause_words(p: AnswerPause) -> str:
    """A pause and how the answer went on, in a sentence."""
    if p.paused_offset_ms is None:
        gap = "" if p.gap_ms is None else f" after a {span(p.gap_ms)} gap"
        return (
            f"The answer resumed at {at_s(p.ended_offset_ms or 0)}{gap}{_waited(p)}"
            " (its pause was not logged)"
        )
    heard = "" if p.heard_ms is None else f"{span(p.heard_ms)} of its item heard"
    requeued = "" if p.requeued_ms is None else f"{span(p.requeued_ms)} kept to send again"
    if p.cleared is False:
        # Held at the stop target: nothing was taken back; the answer ran out.
        ran_out = p.stop_in_ms or 0
        when = f"{span(ran_out)} later" if ran_out >= 0 else f"{span(-ran_out)} before"
        requeued = f"held: it ran out {when}, nothing cleared"
    figures = ", ".join(part for part in (heard, requeued) if part)
    paused = f"The answer paused at {at_s(p.paused_offset_ms)} while a caller's sound was judged"
    paused += f" ({figures})" if figures else ""
    if p.outcome == PauseOutcome.RESUMED:
        gap = "" if p.gap_ms is None else f": the caller heard {span(p.gap_ms)} of silence"
        return f"{paused}; resumed at {at_s(p.ended_offset_ms or 0)}{gap}{_waited(p)}"
    if p.outcome == PauseOutcome.INTERRUPTED:
        return f"{paused}; the sound was an interruption, at {at_s(p.ended_offset_ms or 0)}"
    return f"{paused}; never resumed"


def _waited(p: AnswerPause) -> str:
    """How much of a resume's gap it waited for the pause's clear to come back."""
    if not p.waits_ms:
        return ""
    return f", {span(p.waits_ms)} of it waiting for the clear's marks"


def sound_events(rows: Sequence[TimelineRow]) -> list[Event]:
    """Each verdict as a bar from the sound's onset to the verdict, in the "sounds" lane."""
    return [_verdict_event(v) for v in turn_verdicts(_kind_rows(rows))]


def pause_events(rows: Sequence[TimelineRow], extent_ms: int) -> list[Event]:
    """Each pause of the answer as a bar on the AI's lane, from the pause to the resumed
    audio (or the interruption); one never resumed runs to `extent_ms`, and a resume whose
    pause was not logged is drawn back from it by its gap."""
    return [_pause_event(p, extent_ms) for p in answer_pauses(_kind_rows(rows))]


def span(ms: int) -> str:
    """A short duration as a person says it: "360 ms", "1.2 s"."""
    return f"{ms} ms" if abs(ms) < 1000 else f"{ms / 1000:.1f} s"


# --- small things ----------------------------------------------------------------------------


def _kind_rows(rows: Iterable[TimelineRow]) -> list[KindRow]:
    return [(kind, offset, details) for kind, offset, _, details in rows]


def _cuts_the_answer(kind: str, details: Mapping[str, object]) -> bool:
    # Every barge-in comes with its interruption's verdict, first: the verdict is the word.
    return (
        kind == RecordKind.TURN_VERDICT
        and details.get("verdict") == Verdict.INTERRUPTION
        and details.get("interruptible") is not False
    )


def _pause(
    paused: tuple[int, Mapping[str, object]],
    outcome: PauseOutcome,
    ended: int | None,
    gap: int | None = None,
    waits: int | None = None,
) -> AnswerPause:
    offset, details = paused
    return AnswerPause(
        paused_offset_ms=offset,
        outcome=outcome,
        ended_offset_ms=ended,
        gap_ms=gap,
        item_id=detail_str(details, "item_id"),
        heard_ms=detail_int(details, "heard_ms"),
        requeued_ms=detail_int(details, "requeued_ms"),
        cleared=cleared if isinstance(cleared := details.get("cleared"), bool) else None,
        stop_in_ms=detail_int(details, "stop_in_ms"),
        waits_ms=waits,
    )


def _what_followed(v: TurnVerdict, they: str) -> str:
    if v.verdict == Verdict.INTERRUPTION:
        if not v.interruptible:
            return "a passage heard whole: it went on, and the caller is answered after it"
        if v.stopped_hearing_ms is None:
            return "the AI stopped"
        return (
            f"the AI stopped: the caller stopped hearing it {span(v.stopped_hearing_ms)} "
            f"after {they} began"
        )
    return "the answer was paused meanwhile, then went on" if v.paused else "the answer went on"


def _verdict_event(v: TurnVerdict) -> Event:
    interruption = v.verdict == Verdict.INTERRUPTION
    title = join_lines(
        verdict_words(v),
        f"from the onset at {at_s(v.speech_onset_offset_ms)} to the verdict at "
        f"{at_s(v.offset_ms)}: decided_by={v.decided_by}, decision {v.decision_ms} ms",
        f"voice {_figure(v.voice_ms)} ms in {_figure(v.sounds)} sound(s): "
        f"{_figure(v.voice_frames)} voice frames, {_figure(v.echo_frames)} echo frames",
        f"words: “{v.words}”" if v.words else "no words",
        "the answer was paused while it was judged"
        if v.paused
        else "the answer played on while it was judged",
        f"the caller stopped hearing the AI {_figure(v.stopped_hearing_ms)} ms after the onset"
        if interruption and v.interruptible
        else "",
        "not interruptible: a passage heard whole" if not v.interruptible else "",
        f"item {', '.join(v.item_ids)}" if v.item_ids else "",
    )
    data = (
        ("verdict", v.verdict),
        ("decided-by", v.decided_by),
        ("onset-ms", str(v.speech_onset_offset_ms)),
        ("decided-ms", str(v.offset_ms)),
        ("decision-ms", str(v.decision_ms)),
        ("voice-ms", _figure(v.voice_ms, "")),
        ("paused", _flag(v.paused)),
        ("interruptible", _flag(v.interruptible)),
        ("stopped-hearing-ms", _figure(v.stopped_hearing_ms, "")),
    )
    variant = v.verdict if v.verdict in VERDICTS else "other"
    label = "interruption, not cut" if interruption and not v.interruptible else v.verdict
    inside = f"{label} “{v.words}”" if v.words else label
    return Event(
        "sounds",
        "verdict",
        variant,
        v.speech_onset_offset_ms,
        v.offset_ms,
        title,
        data,
        label,
        inside,
    )


def _pause_event(p: AnswerPause, extent_ms: int) -> Event:
    end = extent_ms if p.ended_offset_ms is None else p.ended_offset_ms
    start = p.paused_offset_ms
    if start is None:
        start = max(0, end - (p.gap_ms or 0))
    end = max(start, end)
    title = join_lines(
        pause_words(p),
        f"paused {at_s(start)} to {at_s(end)} ({at_s(end - start)})"
        + ("; drawn to the end" if p.ended_offset_ms is None else ""),
        f"item {p.item_id}" if p.item_id else "",
    )
    if p.outcome == PauseOutcome.RESUMED:
        label = "paused" if p.gap_ms is None else f"paused, gap {p.gap_ms} ms"
    elif p.outcome == PauseOutcome.INTERRUPTED:
        label = "paused, then interrupted"
    else:
        label = "paused, never resumed"
    data = (("outcome", p.outcome), ("gap-ms", _figure(p.gap_ms, "")), ("item", p.item_id))
    return Event("ai", "pause", p.outcome, start, end, title, data, label)


def _figure(value: int | None, missing: str = "?") -> str:
    return missing if value is None else str(value)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"
