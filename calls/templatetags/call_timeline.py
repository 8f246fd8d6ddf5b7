"""`{% timeline_shapes timeline %}`: a call's timeline shapes as SVG markup.

The same markup the template language would produce, built in Python: a busy
10-minute call has thousands of shapes, and the template loop cost 120 ms of
its page (benchmarks/bench_review.py); this costs a few.
"""

from __future__ import annotations

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from calls.review.timeline import Shape, Timeline

register = template.Library()


@register.simple_tag
def timeline_shapes(timeline: Timeline) -> SafeString:
    # Safe: every value from the rows (titles, labels, ids) is escaped in `_shape`.
    return mark_safe("".join(_shape(shape) for shape in timeline.shapes))


def _shape(shape: Shape) -> str:
    kind = escape(shape.kind)
    attributes = [
        f'id="{escape(shape.element_id)}"',
        f'class="tl-{kind} tl-{kind}--{escape(shape.variant)}"',
        f'data-kind="{kind}"',
        f'data-offset-ms="{shape.offset_ms}"',
    ]
    if shape.end_ms is not None:
        attributes.append(f'data-end-ms="{shape.end_ms}"')
    attributes += [f'data-{escape(name)}="{escape(value)}"' for name, value in shape.data]
    parts = [f"<g {' '.join(attributes)}>", f"<title>{escape(shape.title)}</title>"]
    if (box := shape.overlay) is not None:
        parts.append(
            f'<rect class="tl-overlay" x="{box.x}" y="{box.y}" width="{box.width}" '
            f'height="{box.height}"/>'
        )
    if (box := shape.body) is not None:
        parts.append(
            f'<rect class="tl-body" x="{box.x}" y="{box.y}" width="{box.width}" '
            f'height="{box.height}" rx="2"/>'
        )
    if (line := shape.line) is not None:
        ends = f'x1="{line.x}" x2="{line.x}" y1="{line.y1}" y2="{line.y2}"'
        parts.append(f'<line class="tl-hit" {ends}/><line class="tl-line" {ends}/>')
    if shape.glyph:
        parts.append(f'<path class="tl-glyph" d="{escape(shape.glyph)}"/>')
    if (label := shape.label) is not None:
        inside = " tl-label--inside" if label.row < 0 else ""
        parts.append(
            f'<text class="tl-label{inside}" x="{label.x}" y="{label.y}" '
            f'text-anchor="{escape(label.anchor)}">{escape(label.text)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)
