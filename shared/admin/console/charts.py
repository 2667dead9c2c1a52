"""Charts as SVG drawn on the server: lines over the last hour, bars for a snapshot.

Only numbers and escaped labels go into the markup, and colours are SVG attributes (no inline
CSS), so the console's Content-Security-Policy needs nothing relaxed for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

COLOURS = ("#2f6fb0", "#c0392b", "#7a7a7a", "#27864a")
WIDTH, HEIGHT, PAD = 560, 160, 28


def _nice_max(values: Sequence[float]) -> float:
    top = max([*values, 0.0])
    if top <= 0:
        return 1.0
    step = 10 ** (len(str(int(top))) - 1)
    return float(((int(top) // step) + 1) * step)


def line_chart(title: str, series: Sequence[tuple[str, Sequence[float]]], unit: str = "") -> Markup:
    """One line per series over equally spaced points (oldest left), with a legend."""
    points = max((len(values) for _, values in series), default=0)
    top = _nice_max([v for _, values in series for v in values])
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} '
        f'{HEIGHT}" width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>',
        f'<text x="2" y="{PAD}" font-size="10" fill="#555">{top:g}{escape(unit)}</text>',
        f'<text x="2" y="{HEIGHT - PAD}" font-size="10" fill="#555">0</text>',
    ]
    for n, (name, values) in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        coords = " ".join(
            f"{PAD + (i * inner_w / max(points - 1, 1)):.1f},"
            f"{HEIGHT - PAD - (v / top) * inner_h:.1f}"
            for i, v in enumerate(values)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        parts.append(
            f'<text x="{PAD + 170 * n}" y="{HEIGHT - 6}" font-size="11" fill="{colour}">'
            f"{escape(name)} (now {values[-1] if values else 0:.3g}{escape(unit)})</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, bars: Sequence[tuple[str, float | None]]) -> Markup:
    """One horizontal bar per item; None is drawn as "unknown"."""
    row = 22
    height = max(row * len(bars) + 10, 30)
    top = _nice_max([v or 0.0 for _, v in bars])
    label_w = 190
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} '
        f'{height}" width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for n, (name, value) in enumerate(bars):
        y = 5 + n * row
        width = 0.0 if value is None else (value / top) * (WIDTH - label_w - 60)
        shown = "unknown" if value is None else f"{value:g}"
        parts.append(f'<text x="0" y="{y + 14}" font-size="11" fill="#333">{escape(name)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="14" fill="{COLOURS[0]}"/>'
        )
        parts.append(
            f'<text x="{label_w + width + 4:.1f}" y="{y + 14}" font-size="11" fill="#333">'
            f"{shown}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
