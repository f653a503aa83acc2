"""Server-side SVG bar charts: geometry computed here, drawn by templates/backoffice/bar_chart.svg.

No JavaScript and no CDN: the admin page stays whole offline and the chart is in the HTML itself.
"""

from dataclasses import dataclass
from datetime import date

from django.utils.formats import date_format, number_format


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    value: int
    label: str
    tick: str  # shown under the bar when not empty


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    max_value: int
    max_label: str
    bars: list[Bar]


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ at or above value (so the axis reads round numbers)."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def daily_bar_chart(
    points: list[tuple[date, int]], *, width: int = 720, height: int = 220
) -> BarChart:
    """One bar per day; heights are integers in pixels, proportional to the day's credits."""
    plot_top, plot_bottom, left, right = 16, height - 24, 56, 8
    plot_height = plot_bottom - plot_top
    slot = (width - left - right) // max(len(points), 1)
    gap = max(slot // 5, 1)
    top = nice_ceiling(max((value for _day, value in points), default=0))
    label_every = max(len(points) // 10, 1)
    bars = []
    for index, (day, value) in enumerate(points):
        bar_height = value * plot_height // top if value > 0 else 0
        if value > 0:
            bar_height = max(bar_height, 1)  # a day with any use stays visible
        bars.append(
            Bar(
                x=left + index * slot + gap // 2,
                y=plot_bottom - bar_height,
                width=max(slot - gap, 1),
                height=bar_height,
                value=value,
                label=f"{date_format(day, 'SHORT_DATE_FORMAT')}: {number_format(value, force_grouping=True)}",
                tick=date_format(day, "d/m") if index % label_every == 0 else "",
            )
        )
    return BarChart(
        width=width,
        height=height,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        max_value=top,
        max_label=number_format(top, force_grouping=True),
        bars=bars,
    )
