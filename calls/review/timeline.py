"""Geometry of a call's timeline picture: playout-log rows in, positioned SVG shapes out.

Pure: no queries, no templates. Input rows are `(kind, offset_ms, playout_status,
details)` in offset order, as `PlayoutLog.objects.values_list(...)` yields
them; the admin template only draws what `build_timeline` returns. All x/y
figures are SVG user units (px), rounded to 0.1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from callcore.records import RecordKind as PlayoutKind

TimelineRow = tuple[str, int, str, Mapping[str, Any]]

WIDTH = 980
PLOT_X = 90  # left of the plot; lane names sit in the margin
PLOT_WIDTH = WIDTH - PLOT_X - 20
LABEL_ROWS = 3
LABEL_ROW_HEIGHT = 14
LANES_TOP = 16 + LABEL_ROWS * LABEL_ROW_HEIGHT
LANE_HEIGHT = 26
LANE_GAP = 8
CHAR_WIDTH = 6.2  # of the 11 px label font, for overlap avoidance only
TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
MAX_TICKS = 12

# (lane key, visible name), top to bottom.
LANES = (("ai", "AI audio"), ("caller", "Caller"), ("call", "Call"))
_SPEECH_STARTS = (PlayoutKind.BARGE_IN, PlayoutKind.USER_SPEECH_AI_SILENT)
_BARGE_IN_FIGURES = (
    "playout_remaining_ms",
    "audio_end_ms",
    "reaction_ms",
    "pending_ms",
    "unplayed_ms",
    "response_cancelled",
)


@dataclass(frozen=True)
class Lane:
    key: str
    name: str
    y: float
    height: float
    label_y: float


@dataclass(frozen=True)
class Bar:
    """An interval: `kind` is "playout", "speech" or "drain"; `variant` picks the colour."""

    kind: str
    variant: str
    offset_ms: int
    end_ms: int
    x: float
    width: float
    y: float
    height: float
    label: str  # drawn inside the bar only when it fits; the title always has it
    label_x: float
    label_y: float
    title: str


@dataclass(frozen=True)
class Marker:
    """An instant drawn as a vertical line across the lanes, with a label above them."""

    kind: str  # "barge_in", "user_speech_ai_silent" or "stream_ended"
    offset_ms: int
    x: float
    y1: float
    y2: float
    label: str
    label_x: float
    label_y: float
    label_anchor: str  # "start" or "end"
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    duration_ms: int
    axis_y: float
    tick_label_y: float
    lanes_top: float
    plot_x: float
    plot_width: float
    plot_end_x: float
    lanes: list[Lane]
    ticks: list[Tick]
    bars: list[Bar]
    markers: list[Marker]


def build_timeline(rows: Sequence[TimelineRow]) -> Timeline:
    """Lay out one call's playout log. Shapes whose end was never logged run to the end."""
    end_ms = max([1000, *(_end_of(kind, offset, details) for kind, offset, _, details in rows)])
    duration_ms = int(end_ms * 1.03)
    lanes: dict[str, Lane] = {}
    for i, (key, name) in enumerate(LANES):
        y = LANES_TOP + i * (LANE_HEIGHT + LANE_GAP)
        lanes[key] = Lane(key, name, y, LANE_HEIGHT, y + LANE_HEIGHT / 2 + 4)
    axis_y = LANES_TOP + len(LANES) * (LANE_HEIGHT + LANE_GAP) + 4
    scale = PLOT_WIDTH / duration_ms
    bars = [
        *_playout_bars(rows, end_ms, scale, lanes["ai"]),
        *_speech_bars(rows, end_ms, scale, lanes["caller"]),
        *_drain_bars(rows, end_ms, scale, lanes["call"]),
    ]
    return Timeline(
        width=WIDTH,
        height=int(axis_y + 30),
        duration_ms=duration_ms,
        axis_y=axis_y,
        tick_label_y=axis_y + 16,
        lanes_top=LANES_TOP,
        plot_x=PLOT_X,
        plot_width=PLOT_WIDTH,
        plot_end_x=PLOT_X + PLOT_WIDTH,
        lanes=list(lanes.values()),
        ticks=_ticks(duration_ms, scale),
        bars=bars,
        markers=_markers(rows, scale, axis_y),
    )


def x_of(offset_ms: int, scale: float) -> float:
    """The x of an offset, for a scale in px per ms."""
    return round(PLOT_X + max(offset_ms, 0) * scale, 1)


def _end_of(kind: str, offset_ms: int, details: Mapping[str, Any]) -> int:
    if kind == PlayoutKind.PLAYOUT_ENDED:
        return max(offset_ms, details.get("audio_end_offset_ms") or 0)
    return offset_ms


def _bar(
    kind: str, variant: str, start: int, end: int, scale: float, lane: Lane, label: str, title: str
) -> Bar:
    x = x_of(start, scale)
    width = round(max(x_of(end, scale) - x, 2.0), 1)
    fits = len(label) * CHAR_WIDTH + 6 <= width
    return Bar(
        kind=kind,
        variant=variant,
        offset_ms=start,
        end_ms=end,
        x=x,
        width=width,
        y=lane.y,
        height=lane.height,
        label=label if fits else "",
        label_x=round(x + 3, 1),
        label_y=lane.label_y,
        title=title,
    )


def _playout_bars(rows: Sequence[TimelineRow], end_ms: int, scale: float, lane: Lane) -> list[Bar]:
    open_at: dict[str, int] = {}
    intervals: list[tuple[str, int, int, str]] = []
    for kind, offset, _, details in rows:
        response_id = str(details.get("response_id", ""))
        if kind == PlayoutKind.PLAYOUT_STARTED:
            open_at.setdefault(response_id, offset)
        elif kind == PlayoutKind.PLAYOUT_ENDED and response_id in open_at:
            # Where the audio finished playing, which may precede the log row.
            end = details.get("audio_end_offset_ms") or offset
            audio = details.get("audio_ms")
            intervals.append((response_id, open_at.pop(response_id), end, f"{audio} ms of audio"))
    intervals += [(rid, start, end_ms, "no playout end logged") for rid, start in open_at.items()]
    intervals.sort(key=lambda interval: interval[1])
    return [
        _bar(
            "playout",
            "ab"[i % 2],
            start,
            end,
            scale,
            lane,
            _short(rid),
            f"response {rid or '?'}: {_s(start)}-{_s(end)} ({note})",
        )
        for i, (rid, start, end, note) in enumerate(intervals)
    ]


def _speech_bars(rows: Sequence[TimelineRow], end_ms: int, scale: float, lane: Lane) -> list[Bar]:
    bars: list[Bar] = []
    speaking: tuple[str, int] | None = None
    for kind, offset, _, _ in [*rows, (PlayoutKind.SPEECH_STOPPED, end_ms, "", {})]:
        if kind in _SPEECH_STARTS and speaking is None:
            speaking = (kind, offset)
        elif kind == PlayoutKind.SPEECH_STOPPED and speaking is not None:
            start_kind, start = speaking
            variant = "barge" if start_kind == PlayoutKind.BARGE_IN else "silent"
            what = "barge-in" if variant == "barge" else "judged AI silent"
            title = f"caller speech {_s(start)}-{_s(offset)} ({what})"
            bars.append(_bar("speech", variant, start, offset, scale, lane, "caller", title))
            speaking = None
    return bars


def _drain_bars(rows: Sequence[TimelineRow], end_ms: int, scale: float, lane: Lane) -> list[Bar]:
    bars: list[Bar] = []
    started: tuple[int, Mapping[str, Any]] | None = None
    for kind, offset, _, details in [*rows, ("", end_ms, "", {})]:
        if kind == PlayoutKind.DRAIN_STARTED:
            started = (offset, details)
        elif started is not None and kind in (PlayoutKind.DRAIN_COMPLETED, ""):
            start, start_details = started
            if kind:
                cut = details.get("cut_off_ms") or 0
                echoed = (
                    "final mark echoed" if details.get("final_mark_echoed") else "NO final mark"
                )
                note = (
                    f"expected {details.get('expected_wait_ms')} ms, actual "
                    f"{details.get('actual_wait_ms')} ms, {echoed}, cut off {cut} ms"
                )
                variant = "ok" if details.get("final_mark_echoed") and not cut else "cut"
            else:
                note = f"expected {start_details.get('expected_wait_ms')} ms, never completed"
                variant = "cut"
            title = f"hangup drain {_s(start)}-{_s(offset)}: {note}"
            bars.append(_bar("drain", variant, start, offset, scale, lane, "drain", title))
            started = None
    return bars


def _markers(rows: Sequence[TimelineRow], scale: float, axis_y: float) -> list[Marker]:
    row_ends = [float("-inf")] * LABEL_ROWS
    markers: list[Marker] = []
    for kind, offset, status, details in rows:
        if kind == PlayoutKind.BARGE_IN:
            remaining = details.get("playout_remaining_ms")
            label = f"barge-in {remaining} ms left"
            figures = ", ".join(f"{name}={details.get(name)}" for name in _BARGE_IN_FIGURES)
            title = f"barge-in at {_s(offset)}: {figures}, {status or '-'}"
        elif kind == PlayoutKind.USER_SPEECH_AI_SILENT:
            label = f"AI silent: {status or '-'}"
            title = (
                f"caller speech judged AI silent at {_s(offset)}: {status or '-'}, "
                f"ms_since_playout_end={details.get('ms_since_playout_end')}"
            )
        elif kind == PlayoutKind.STREAM_ENDED:
            reason = details.get("end_reason") or "-"
            label, title = f"hangup ({reason})", f"stream ended at {_s(offset)}: {reason}"
        else:
            continue
        x = x_of(offset, scale)
        text_width = len(label) * CHAR_WIDTH
        anchor = "end" if x + 3 + text_width > WIDTH else "start"
        left = x - 3 - text_width if anchor == "end" else x + 3
        # The first label row still free at this x; crowded calls reuse the emptiest.
        free = [i for i, end in enumerate(row_ends) if end + 4 <= left]
        row = free[0] if free else min(range(LABEL_ROWS), key=row_ends.__getitem__)
        row_ends[row] = left + text_width
        label_y = 12 + row * LABEL_ROW_HEIGHT
        markers.append(
            Marker(
                kind=kind,
                offset_ms=offset,
                x=x,
                y1=label_y + 3,
                y2=axis_y,
                label=label,
                label_x=round(x - 3 if anchor == "end" else x + 3, 1),
                label_y=label_y,
                label_anchor=anchor,
                title=title,
            )
        )
    return markers


def _ticks(duration_ms: int, scale: float) -> list[Tick]:
    step_s = next(
        (s for s in TICK_STEPS_S if duration_ms / 1000 / s <= MAX_TICKS), TICK_STEPS_S[-1]
    )
    return [
        Tick(x_of(t * 1000, scale), f"{t} s")
        for t in range(0, duration_ms // 1000 + 1, step_s)
        if t * 1000 <= duration_ms
    ]


def _short(response_id: str) -> str:
    return response_id if len(response_id) <= 14 else response_id[:13] + "…"


def _s(offset_ms: int) -> str:
    return f"{offset_ms / 1000:.2f} s"
