"""Geometry of a call's timeline picture: playout-log rows in, positioned SVG shapes out.

Pure: no queries, no templates, no clock. `calls.review.story` reads the rows into
what happened; this module only places it: the scale, the lanes, label rows that
never overprint, the ticks. The admin template only draws what `build_timeline`
returns. Times are ms since the stream started; x/y figures are SVG user units (px),
rounded to 0.1.

Lanes, top to bottom: findings (flags, only when there are some), the AI audio the
caller heard (what a barge-in dropped, and where the answer paused while a caller's
sound was judged), the caller's speech from its real onset and the keypad digits given
to the model, the caller's sounds during the AI's turn and what each was judged to be
(only when there are some), the agent's tool calls and holding lines (only when there
are some), the hangup and transfer drains, and the model's and the protocol's errors.
Each lane has a band of label rows above it, as many as its labels need.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from calls.review.event import at_s
from calls.review.story import Event, Finding, SuspectRow, TimelineRow, read_story

__all__ = [
    "LANES",
    "MIN_WIDTH",
    "PX_PER_S",
    "Box",
    "Label",
    "Lane",
    "Line",
    "Shape",
    "SoundEntry",
    "SuspectEntry",
    "SuspectRow",
    "Tick",
    "Timeline",
    "TimelineRow",
    "build_timeline",
]

PX_PER_S = 60  # a call's width follows its length...
MIN_WIDTH = 980  # ...but a short call still fills the page
PLOT_X = 96  # left of the plot; lane names sit in the margin
RIGHT_PAD = 24
HEADER_HEIGHT = 28
LABEL_ROW_HEIGHT = 14
LABEL_GAP = 6  # between two labels of one row
CHAR_WIDTH = 6.5  # of the 11 px label font, generous, so estimates never overlap
LANE_GAP = 8
TICK_STEPS_MS = (100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000)
MIN_TICK_PX = 56
_INSIDE_KINDS = ("playout", "drain", "tool", "verdict")  # bars that hold their words

# (key, name, height): top to bottom.
LANES = (
    ("findings", "Findings", 18),
    ("ai", "AI audio", 36),
    ("caller", "Caller", 24),
    ("sounds", "Caller sounds", 20),
    ("tools", "Tools", 20),
    ("hangup", "Hangup", 20),
    ("errors", "Errors", 20),
)
_ONLY_WHEN_USED = ("findings", "sounds", "tools")  # lanes drawn only when the call has some
_SOUND_KINDS = ("verdict", "pause")  # what the list of caller sounds under the picture tells


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Line:
    """A vertical line."""

    x: float
    y1: float
    y2: float


@dataclass(frozen=True)
class Label:
    """Words drawn at (x, y), baseline; `row` -1 inside its bar, else a row of its lane's band."""

    text: str
    x: float
    y: float
    anchor: str  # "start" or "end"
    left: float
    right: float
    row: int

    @property
    def top(self) -> float:
        return self.y - 9

    @property
    def bottom(self) -> float:
        return self.y + 3


@dataclass(frozen=True)
class Shape:
    """One thing that happened, as the template draws it: a `<g>` with `data-kind`.

    Bars (`end_ms` set) have a `body`; marks have a `line` and a `glyph` (SVG
    path data). `data` holds the extra `data-*` attributes, names without "data-".
    """

    kind: str
    variant: str
    element_id: str
    offset_ms: int
    end_ms: int | None
    title: str
    data: tuple[tuple[str, str], ...] = ()
    body: Box | None = None
    overlay: Box | None = None  # a missed barge-in: where the caller spoke over the AI
    line: Line | None = None
    glyph: str = ""
    label: Label | None = None


@dataclass(frozen=True)
class Lane:
    key: str
    name: str
    y: float
    height: float
    label_rows: int

    @property
    def name_y(self) -> float:
        return round(self.y + self.height / 2 + 4, 1)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class SuspectEntry:
    """A finding for the list under the picture; `element_id` is its flag ("" if unplaced)."""

    rule: str
    name: str
    message: str
    offset_ms: int | None
    at: str
    element_id: str


@dataclass(frozen=True)
class SoundEntry:
    """A caller's sound judged, or a pause of the answer, in words, for the list under the
    picture; `element_id` is its bar."""

    kind: str  # "verdict" or "pause"
    variant: str  # the verdict, or how the pause ended
    at: str
    words: str
    element_id: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    duration_ms: int
    px_per_ms: float
    header: str
    link_rtt_ms: int | None
    plot_x: float
    plot_width: float
    plot_end_x: float
    axis_y: float
    tick_label_y: float
    lanes_top: float
    lanes: list[Lane]
    ticks: list[Tick]
    leaders: list[Line]  # from band labels down to their lane, drawn under everything
    shapes: list[Shape]  # in drawing order
    suspects: list[SuspectEntry]
    sounds: list[SoundEntry]  # in offset order

    @property
    def px_per_s(self) -> float:
        return round(self.px_per_ms * 1000, 1)

    def x_of(self, offset_ms: int) -> float:
        """The x of an offset in this picture."""
        return _x_of(offset_ms, self.px_per_ms)

    def of_kind(self, kind: str) -> list[Shape]:
        return [shape for shape in self.shapes if shape.kind == kind]


def build_timeline(
    rows: Sequence[TimelineRow],
    *,
    suspects: Sequence[SuspectRow] = (),
    link_rtt_ms: int | None = None,
) -> Timeline:
    """Lay out one call's playout log with its findings flagged; `link_rtt_ms` goes in the header.

    Shapes whose end was never logged run to the end of the picture.
    """
    story = read_story(rows, suspects=suspects, link_rtt_ms=link_rtt_ms)
    events = [  # in drawing order: later ones over earlier ones
        *story.flags,
        *story.stream_ends,
        *story.dropped,
        *story.heard,
        *story.items,
        *story.pauses,
        *story.speech,
        *story.sounds,
        *story.keypad,
        *story.tools,
        *story.drains,
        *story.transfers,
        *story.generation_ends,
        *story.truncations,
        *story.clears,
        *story.errors,
    ]
    scale = max(PX_PER_S / 1000, (MIN_WIDTH - PLOT_X - RIGHT_PAD) / story.extent_ms)
    width = math.ceil(PLOT_X + story.extent_ms * scale + RIGHT_PAD)
    spans = [(_x_of(e.offset_ms, scale), _end_x(e.end_ms, scale)) for e in events]
    inside = [_inside_text(e, x1, x2) for e, (x1, x2) in zip(events, spans, strict=True)]
    slots, band_rows = _allocate_rows(events, spans, inside, width)

    lanes: dict[str, Lane] = {}
    y = float(HEADER_HEIGHT)
    for key, name, height in LANES:
        if key in _ONLY_WHEN_USED and not any(e.lane == key for e in events):
            continue
        rows_needed = band_rows.get(key, 0)
        y += rows_needed * LABEL_ROW_HEIGHT + (4 if rows_needed else 0)
        lanes[key] = Lane(key, name, y, height, rows_needed)
        y += height + LANE_GAP
    frame = _Frame(lanes, scale, y)
    shapes: list[Shape] = []
    leaders: list[Line] = []
    counts: dict[str, int] = {}
    for i, (event, (x1, x2)) in enumerate(zip(events, spans, strict=True)):
        counts[event.kind] = counts.get(event.kind, 0) + 1
        shape = _paint(event, f"tl-{event.kind}-{counts[event.kind]}", x1, x2, frame)
        label = _label(event, shape, inside[i], slots.get(i), lanes[event.lane])
        if label is not None and label.row > 0:
            leaders.append(Line(x1, label.bottom, lanes[event.lane].y))
        shapes.append(replace(shape, label=label))
    return Timeline(
        width=width,
        height=math.ceil(y + 30),
        duration_ms=story.extent_ms,
        px_per_ms=scale,
        header=story.header,
        link_rtt_ms=link_rtt_ms,
        plot_x=PLOT_X,
        plot_width=round(story.extent_ms * scale, 1),
        plot_end_x=_x_of(story.extent_ms, scale),
        axis_y=y,
        tick_label_y=y + 16,
        lanes_top=min(lane.y for lane in lanes.values()),
        lanes=list(lanes.values()),
        ticks=_ticks(story.extent_ms, scale),
        leaders=leaders,
        shapes=shapes,
        suspects=_suspect_entries(story.findings, shapes),
        sounds=_sound_entries(shapes),
    )


def _x_of(offset_ms: int, px_per_ms: float) -> float:
    return round(PLOT_X + max(offset_ms, 0) * px_per_ms, 1)


def _suspect_entries(findings: Sequence[Finding], shapes: Sequence[Shape]) -> list[SuspectEntry]:
    flags = iter([shape.element_id for shape in shapes if shape.kind == "suspect"])
    return [
        SuspectEntry(
            rule=finding.rule,
            name=finding.name,
            message=finding.message,
            offset_ms=finding.offset_ms,
            at=finding.at,
            element_id="" if finding.offset_ms is None else next(flags),
        )
        for finding in findings
    ]


def _sound_entries(shapes: Sequence[Shape]) -> list[SoundEntry]:
    """Each verdict and pause by its bar's start: its tooltip's first line is its sentence."""
    told = sorted(
        (shape for shape in shapes if shape.kind in _SOUND_KINDS),
        key=lambda shape: shape.offset_ms,
    )
    return [
        SoundEntry(
            shape.kind,
            shape.variant,
            at_s(shape.offset_ms),
            shape.title.split("\n", 1)[0],
            shape.element_id,
        )
        for shape in told
    ]


@dataclass(frozen=True)
class _Slot:
    """Where a label goes in its lane's band."""

    row: int  # 0 just above the lane
    anchor: str
    x: float
    left: float
    right: float


@dataclass(frozen=True)
class _Frame:
    lanes: Mapping[str, Lane]
    scale: float
    axis_y: float


def _inside_text(event: Event, x1: float, x2: float | None) -> str:
    """The words drawn inside a bar, cut to fit; "" when even its label does not fit."""
    if event.kind not in _INSIDE_KINDS or x2 is None or not event.label:
        return ""
    chars = int((x2 - x1 - 8) // CHAR_WIDTH)
    text = event.inside or event.label
    if chars < len(event.label):
        return ""
    if len(text) <= chars:
        return text
    return event.label if chars < len(event.label) + 4 else text[: chars - 1].rstrip() + "…"


def _allocate_rows(
    events: Sequence[Event],
    spans: Sequence[tuple[float, float | None]],
    inside: Sequence[str],
    width: int,
) -> tuple[dict[int, _Slot], dict[str, int]]:
    """Band rows for the labels not drawn inside their bars, left to right: each takes the
    lowest row of its lane where its span is free, and a new row when none is."""
    slots: dict[int, _Slot] = {}
    bands: dict[str, list[list[tuple[float, float]]]] = {}
    wanted = [i for i, e in enumerate(events) if e.label and not inside[i]]
    for i in sorted(wanted, key=lambda i: (spans[i][0], i)):
        x, text_width = spans[i][0], len(events[i].label) * CHAR_WIDTH
        if x + 2 + text_width <= width - 2:
            anchor, text_x, left = "start", x + 2, x + 2
        else:
            anchor, text_x, left = "end", x - 2, x - 2 - text_width
        right = left + text_width
        rows = bands.setdefault(events[i].lane, [])
        row = next(
            (
                r
                for r, taken in enumerate(rows)
                if all(right + LABEL_GAP <= a or b + LABEL_GAP <= left for a, b in taken)
            ),
            len(rows),
        )
        if row == len(rows):
            rows.append([])
        rows[row].append((left, right))
        slots[i] = _Slot(row, anchor, round(text_x, 1), round(left, 1), round(right, 1))
    return slots, {lane: len(rows) for lane, rows in bands.items()}


def _label(event: Event, shape: Shape, inside: str, slot: _Slot | None, lane: Lane) -> Label | None:
    body = shape.body
    if inside and body is not None:
        x = round(body.x + 4, 1)
        right = round(x + len(inside) * CHAR_WIDTH, 1)
        return Label(inside, x, round(body.y + body.height / 2 + 4, 1), "start", x, right, -1)
    if slot is None:
        return None
    y = round(lane.y - 5 - slot.row * LABEL_ROW_HEIGHT, 1)
    return Label(event.label, slot.x, y, slot.anchor, slot.left, slot.right, slot.row)


def _paint(event: Event, element_id: str, x1: float, x2: float | None, frame: _Frame) -> Shape:
    """The event's body, or line and glyph, in its lane."""
    lane = frame.lanes[event.lane]
    top, height = lane.y, lane.height
    shape = Shape(
        event.kind,
        event.variant,
        element_id,
        event.offset_ms,
        event.end_ms,
        event.title,
        event.data,
    )
    if x2 is not None:
        width = round(max(x2 - x1, 2.0), 1)
        inset = 9 if event.lane == "ai" else 3  # the AI lane's top strip holds generation ends
        body = Box(x1, top + inset, width, height - inset - (7 if event.lane == "ai" else 3))
        overlay = None
        if event.overlap_until_ms is not None:
            ai = frame.lanes["ai"]
            over = round(max(_x_of(event.overlap_until_ms, frame.scale) - x1, 2.0), 1)
            overlay = Box(x1, ai.y + 9, over, round(top + height - 3 - ai.y - 9, 1))
        return replace(shape, body=body, overlay=overlay)
    middle = top + height / 2
    if event.kind == "generation_end":
        line, glyph = Line(x1, top + 8, top + 29), f"M{_n(x1 - 4)} {_n(top + 1)}h8l-4 7z"
    elif event.kind == "item_start":
        line, glyph = Line(x1, top + 9, top + height - 7), ""
    elif event.kind == "truncation":
        line, glyph = Line(x1, top + 9, top + 29), f"M{_n(x1)} {_n(top + 29)}l4 7h-8z"
    elif event.kind == "clear":
        line, glyph = Line(x1, top + 4, top + 33), ""
    elif event.kind == "decision":
        line, glyph = Line(x1, top - 1, top + height + 1), _diamond(x1, middle, 4.5)
    elif event.kind == "error":
        line, glyph = Line(x1, top + 2, top + height - 2), _error_glyph(event.variant, x1, middle)
    elif event.kind == "keypad":
        line, glyph = Line(x1, top + 2, top + height - 2), _square(x1, middle, 3.5)
    elif event.kind == "hold":
        line, glyph = Line(x1, top + 2, top + height - 2), _disc(x1, middle, 3.5)
    elif event.kind == "transfer":
        line = Line(x1, top - 1, top + height + 1)
        glyph = f"M{_n(x1 - 3)} {_n(middle - 5)}l8 5l-8 5z"
    elif event.kind == "stream_ended":
        line = Line(x1, frame.lanes["ai"].y - 2, frame.axis_y)
        glyph = _square(x1, middle, 3.5)
    else:  # a suspect's flag, and its line down through the lanes
        line = Line(x1, top + 16, frame.axis_y)
        glyph = f"M{_n(x1)} {_n(top + 16)}V{_n(top + 2)}l9 3.5l-9 3.5z"
    return replace(shape, line=Line(line.x, round(line.y1, 1), round(line.y2, 1)), glyph=glyph)


def _error_glyph(variant: str, x: float, y: float) -> str:
    if variant in ("error", "recovered", "notice"):  # a disc; the CSS hollows "recovered"
        return _disc(x, y, 3 if variant == "notice" else 4.5)
    if variant == "fault":
        return f"M{_n(x)} {_n(y - 5)}l5 9h-10z"
    if variant == "protocol":
        return f"M{_n(x - 4)} {_n(y - 4)}h8v8h-8z"
    return _diamond(x, y, 5)


def _disc(x: float, y: float, r: float) -> str:
    return f"M{_n(x - r)} {_n(y)}a{r} {r} 0 1 0 {2 * r} 0a{r} {r} 0 1 0 {-2 * r} 0z"


def _square(x: float, y: float, r: float) -> str:
    return f"M{_n(x - r)} {_n(y - r)}h{_n(2 * r)}v{_n(2 * r)}h{_n(-2 * r)}z"


def _diamond(x: float, y: float, r: float) -> str:
    return f"M{_n(x)} {_n(y - r)}l{r} {r}l{-r} {r}l{-r} {-r}z"


def _ticks(extent_ms: int, scale: float) -> list[Tick]:
    step = next((s for s in TICK_STEPS_MS if s * scale >= MIN_TICK_PX), TICK_STEPS_MS[-1])
    return [Tick(_x_of(t, scale), _tick_label(t)) for t in range(0, extent_ms + 1, step)]


def _tick_label(offset_ms: int) -> str:
    if offset_ms % 1000:
        return f"{offset_ms / 1000:g} s"
    seconds = offset_ms // 1000
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60}:{seconds % 60:02d}"


# --- small things ----------------------------------------------------------------------------


def _end_x(end_ms: int | None, scale: float) -> float | None:
    return None if end_ms is None else _x_of(end_ms, scale)


def _n(value: float) -> str:
    return f"{round(value, 1):g}"
