"""A small SVG line plot of a Curve: axes, ticks, optional log scales, a legend; no matplotlib.

The output depends only on the curve (fixed palette, fixed number formatting, series in the order
given), so re-rendering the same results gives the same file byte for byte.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from pgstack_bench.model import Curve

WIDTH = 780
HEIGHT = 420
MARGIN_LEFT = 78
LEGEND_MIN = 120  # room right of the plot for the legend, grown for long series names
CHAR_WIDTH = 7  # about, at font-size 12
MARGIN_TOP = 44
MARGIN_BOTTOM = 56
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MARKERS = ("circle", "square", "triangle", "diamond")


def format_number(value: float) -> str:
    """A tick label: 1, 2.5, 0.01, 1,000, 1e+06 (short, stable)."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude < 1e-3:
        return f"{value:.0e}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}"


def linear_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks: list[float] = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten covering [low, high] (low > 0), with 2 and 5 added inside a short range."""
    first = math.floor(math.log10(low))
    last = math.ceil(math.log10(high))
    if last == first:
        last += 1
    ticks = [10.0**k for k in range(first, last + 1)]
    if last - first <= 2:
        ticks = sorted(ticks + [m * 10.0**k for k in range(first, last) for m in (2, 5)])
    return ticks


class _Axis:
    def __init__(
        self, values: list[float], *, log: bool, start: float, end: float, zero: bool
    ) -> None:
        self.log = log
        finite = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
        if not finite:
            finite = [1.0, 10.0] if log else [0.0, 1.0]
        low, high = min(finite), max(finite)
        if low == high:  # one value: put it in the middle
            low, high = (low / 2, high * 2) if log or low > 0 else (low - 1, high + 1)
        if log:
            self.ticks = log_ticks(low, high)
        else:
            # a value axis starts at 0; a size axis too when its values come near 0
            if zero or 0 <= low <= 0.3 * high:
                low = min(low, 0.0)
            self.ticks = linear_ticks(low, high)
        self.low, self.high = self.ticks[0], self.ticks[-1]
        self.start, self.end = start, end

    def _t(self, value: float) -> float:
        if self.log:
            return math.log10(value)
        return value

    def position(self, value: float) -> float:
        span = self._t(self.high) - self._t(self.low)
        fraction = (self._t(value) - self._t(self.low)) / span if span else 0.0
        return self.start + fraction * (self.end - self.start)

    def usable(self, value: float) -> bool:
        return math.isfinite(value) and (value > 0 or not self.log)


def _marker(shape: str, x: float, y: float, color: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{color}"/>'
    if shape == "triangle":
        points = f"{x:.1f},{y - 4.5:.1f} {x - 4.5:.1f},{y + 3.5:.1f} {x + 4.5:.1f},{y + 3.5:.1f}"
        return f'<polygon points="{points}" fill="{color}"/>'
    if shape == "diamond":
        points = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return f'<polygon points="{points}" fill="{color}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"/>'


def render_svg(curve: Curve) -> str:
    """The curve as a standalone SVG document."""
    longest = max((len(label) for label in curve.series), default=0)
    left, right = MARGIN_LEFT, WIDTH - max(LEGEND_MIN, 46 + CHAR_WIDTH * longest)
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    points = [p for series in curve.series.values() for p in series]
    x_axis = _Axis([p[0] for p in points], log=curve.log_x, start=left, end=right, zero=False)
    y_axis = _Axis([p[1] for p in points], log=curve.log_y, start=bottom, end=top, zero=True)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(curve.title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2:.1f}" y="24" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(curve.title)}</text>',
    ]
    for tick in x_axis.ticks:
        x = x_axis.position(tick)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#e5e5e5"/>')
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{format_number(tick)}</text>'
        )
    for tick in y_axis.ticks:
        y = y_axis.position(tick)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{format_number(tick)}</text>'
        )
    out.append(
        f'<polyline points="{left},{top} {left},{bottom} {right},{bottom}" fill="none" '
        f'stroke="black"/>'
    )
    x_label = curve.x_label + (" (log scale)" if curve.log_x else "")
    y_label = curve.y_label + (" (log scale)" if curve.log_y else "")
    out.append(
        f'<text x="{(left + right) / 2:.1f}" y="{HEIGHT - 14}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    middle = (top + bottom) / 2
    out.append(
        f'<text x="18" y="{middle:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 18 {middle:.1f})">{escape(y_label)}</text>'
    )
    for index, (label, series) in enumerate(curve.series.items()):
        color = PALETTE[index % len(PALETTE)]
        shape = MARKERS[index % len(MARKERS)]
        usable = [(x, y) for x, y in series if x_axis.usable(x) and y_axis.usable(y)]
        coords = [(x_axis.position(x), y_axis.position(y)) for x, y in usable]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        out.extend(_marker(shape, x, y, color) for x, y in coords)
        legend_y = top + 8 + index * 20
        legend_x = right + 16
        out.append(
            f'<line x1="{legend_x}" y1="{legend_y}" x2="{legend_x + 24}" y2="{legend_y}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        out.append(_marker(shape, legend_x + 12, legend_y, color))
        out.append(f'<text x="{legend_x + 30}" y="{legend_y + 4}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(curve: Curve, directory: Path) -> Path:
    """Write the curve to <directory>/<curve.name>.svg and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{curve.name}.svg"
    path.write_text(render_svg(curve))
    return path
