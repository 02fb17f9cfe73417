"""The overview's chart of the last hour, laid out on the server for an inline SVG.

One stacked bar per five minutes (delivered, failed, pending from the bottom up) of the
notifications accepted in that time. The page draws the rectangles this computes; no script and no
chart library, so it works offline and without JavaScript. Colours come from the stylesheet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: The stack's layers, bottom first, with the words the legend and the tooltips use.
LAYERS = (("delivered", "delivered"), ("failed", "failed"), ("pending", "pending"))
WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 18, 26
GAP = 4


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    layer: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    plot_left: int
    plot_bottom: int
    summary: str


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``value`` (the axis's top)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def stacked_bars(series: list[dict[str, int]], *, start: dt.datetime, interval_s: int) -> Chart:
    """The chart of ``series`` (one dict of layer -> count per interval from ``start``, UTC)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum(point.get(layer, 0) for layer, _ in LAYERS) for point in series]
    top = _nice_ceiling(max([*totals, 1]))
    slot = plot_w / max(1, len(series))
    bars: list[Bar] = []
    x_ticks: list[Tick] = []
    for i, point in enumerate(series):
        x = LEFT + i * slot + GAP / 2
        at = start + dt.timedelta(seconds=i * interval_s)
        label = at.strftime("%H:%M")
        base = HEIGHT - BOTTOM
        for layer, words in LAYERS:
            count = point.get(layer, 0)
            if count <= 0:
                continue
            height = plot_h * count / top
            base -= height
            bars.append(
                Bar(
                    round(x, 1),
                    round(base, 1),
                    round(slot - GAP, 1),
                    round(height, 1),
                    layer,
                    f"{label} UTC: {count} {words}",
                )
            )
        if i % 3 == 0:
            x_ticks.append(Tick(round(x, 1), HEIGHT - 8, label))
    y_ticks = [Tick(LEFT - 6, round(HEIGHT - BOTTOM - plot_h * f, 1), str(int(top * f))) for f in (0, 0.5, 1)]
    total = sum(totals)
    peak = max(totals) if totals else 0
    summary = (
        f"{total} notifications accepted since {start.strftime('%H:%M')} UTC, "
        f"at most {peak} in five minutes; bars stack delivered, failed and pending."
    )
    return Chart(WIDTH, HEIGHT, bars, x_ticks, y_ticks, LEFT, HEIGHT - BOTTOM, summary)
