"""A server-side SVG bar chart of daily consumption: no JavaScript, no CDN."""

from dataclasses import dataclass
from datetime import date

BAR_WIDTH = 10
GAP = 2
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
    bars = []
    for index, (day, value) in enumerate(points):
        # Integer geometry; any non-zero day gets at least one unit so it stays visible.
        height = (value * HEIGHT) // peak if peak else 0
        if value and not height:
            height = 1
        bars.append(Bar(day, value, index * (BAR_WIDTH + GAP), HEIGHT - height, BAR_WIDTH, height))
    width = max(len(points) * (BAR_WIDTH + GAP) - GAP, BAR_WIDTH)
    return BarChart(bars, width, HEIGHT, peak, sum(value for _day, value in points))
