"""Server-side SVG charts: they render offline, in the report's single HTML file and in a screenshot.

Every label goes through `html.escape`; the output is marked safe for Jinja only after that.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

PALETTE = ("#1f5fa8", "#d9622b", "#2a9d5b", "#8a4fb5", "#7a7a7a")


def line_chart(
    x_labels: list[str],
    series: dict[str, list[float | None]],
    title: str,
    y_range: tuple[float, float] = (0.0, 1.0),
    width: int = 640,
    height: int = 260,
) -> Markup:
    """Lines over categorical x (weeks); None values break the line. y in `y_range`."""
    left, right, top, bottom = 48, 150, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = y_range
    step = plot_w / max(1, len(x_labels) - 1)

    def x(i):
        return left + (i * step if len(x_labels) > 1 else plot_w / 2)

    def y(v):  # values outside the range sit on its edge (the tooltip keeps the value)
        v = min(max(v, lo), hi)
        return top + plot_h * (1 - (v - lo) / ((hi - lo) or 1))

    parts = [_svg_open(width, height, title), f'<text x="{left}" y="18" class="chart-title">{escape(title)}</text>']
    for k in range(5):
        value = lo + (hi - lo) * k / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" class="tick" text-anchor="end">{value:.2f}</text>')
    for i, label in enumerate(x_labels):
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - 14}" class="tick" text-anchor="middle">{escape(label[-3:])}</text>'
        )
    for n, (name, values) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        segment: list[str] = []
        for i, value in enumerate(values):
            if value is None:
                parts.append(_polyline(segment, color))
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(value):.1f}")
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{color}">'
                f"<title>{escape(name)} {escape(x_labels[i])}: {value:.3f}</title></circle>"
            )
        parts.append(_polyline(segment, color))
        legend_y = top + 14 + 18 * n
        parts.append(
            f'<rect x="{left + plot_w + 12}" y="{legend_y - 9}" width="12" height="3" fill="{color}"/>'
            f'<text x="{left + plot_w + 30}" y="{legend_y}" class="legend">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def diverging_bars(rows: list[tuple[str, float, str]], title: str, width: int = 640, row_h: int = 20) -> Markup:
    """Horizontal bars around zero: (label, value, annotation). Positive right (blue), negative left."""
    label_w, note_w, top = 150, 170, 28
    height = top + row_h * max(1, len(rows)) + 10
    plot_w = width - label_w - note_w
    scale = max((abs(v) for _, v, _ in rows), default=1) or 1
    zero = label_w + plot_w / 2
    parts = [_svg_open(width, height, title), f'<text x="4" y="18" class="chart-title">{escape(title)}</text>']
    parts.append(f'<line x1="{zero}" x2="{zero}" y1="{top - 4}" y2="{height - 6}" class="axis"/>')
    for i, (label, value, note) in enumerate(rows):
        y = top + i * row_h
        length = (plot_w / 2) * abs(value) / scale
        x = zero if value >= 0 else zero - length
        color = PALETTE[0] if value >= 0 else PALETTE[1]
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" class="tick" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(length, 1):.1f}" height="{row_h - 6}" fill="{color}">'
            f"<title>{escape(label)}: {value:+.3f}</title></rect>"
        )
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{y + 14}" class="tick">{escape(note)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
    )


def _polyline(points: list[str], color: str) -> str:
    if len(points) < 2:
        return ""
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="2"/>'
