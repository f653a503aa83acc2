"""A server-side SVG bar chart of daily consumption: no JavaScript, no CDN.

The drawing keeps one aspect whatever the period (about 5:1), so it never stretches; its labels
are HTML around it, and its values are also a table on the page.
"""

from dataclasses import dataclass
from datetime import date

WIDTH = 600
HEIGHT = 120


@dataclass(frozen=True)
class Bar:
    day: date
    value: int
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    width: int
    height: int
    peak: int
    total: int


def bar_chart(points: list[tuple[date, int]]) -> BarChart:
    peak = max((value for _day, value in points), default=0)
    # Integer geometry: each day gets an equal slot of the width, a fifth of it as the gap.
    slot = max(WIDTH // max(len(points), 1), 1)
    gap = slot // 5
    bars = []
    for index, (day, value) in enumerate(points):
        # Any non-zero day gets at least one unit, so it stays visible.
        height = (value * HEIGHT) // peak if peak else 0
        if value and not height:
            height = 1
        bars.append(Bar(day, value, index * slot, HEIGHT - height, max(slot - gap, 1), height))
    width = max(len(points) * slot, slot)
    return BarChart(bars, width, HEIGHT, peak, sum(value for _day, value in points))
