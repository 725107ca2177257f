"""Charts as inline SVG, drawn on the server: a line (area) chart of a metric by day and
horizontal bars for a breakdown.

Written by hand rather than with a charting library: the two shapes take a page of code,
need no JavaScript and no CDN, and the markup stays ours to make accessible (a <title>
and <desc>, labelled axes, each point's value in its own <title>). Every number drawn is
also in the report's table next to it. Values are integers (counts or minor units);
positions are integer pixels, so no float comes near an amount.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from leadrelay.reporting.exports import cell_format, report_columns
from leadrelay.reporting.metrics import MetricRow
from leadrelay.reporting.selectors import Report

Format = Callable[[int], str]

WIDTH = 720
LINE_HEIGHT = 240
LEFT = 90  # room for the value axis' labels
RIGHT = 16
TOP = 16
BOTTOM = 44  # room for the day labels and the axis title
BAR_HEIGHT = 22
BAR_GAP = 8
BAR_LABEL = 200  # room for the bars' labels
BAR_VALUE = 110  # room for the value after each bar
_ids = itertools.count(1)


@dataclass(frozen=True)
class Point:
    label: str
    value: int


def day_points(
    rows: Iterable[MetricRow], start: dt.date, end: dt.date, value: Callable[[MetricRow], int]
) -> list[Point]:
    """One point per day from start to end (inclusive), 0 where no row has the day; rows
    are a report's rows grouped by day (their `parts["day"]` is the ISO date)."""
    by_day: dict[str, int] = {}
    for row in rows:
        day = row.parts.get("day", "")
        by_day[day] = by_day.get(day, 0) + value(row)
    days = (end - start).days + 1
    return [
        Point(d.isoformat(), by_day.get(d.isoformat(), 0))
        for d in (start + dt.timedelta(days=i) for i in range(max(days, 0)))
    ]


def nice_step(top: int, ticks: int = 4) -> int:
    """The smallest 1, 2 or 5 times 10^k that covers `top` in `ticks` steps."""
    raw = max(1, -(-top // ticks))
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude >= raw:
                return factor * magnitude
        magnitude *= 10


def _scale(values: Sequence[int]) -> tuple[int, int, int]:
    """The axis' lowest and highest value and its step: covers every value and 0."""
    high, low = max([0, *values]), min([0, *values])
    step = nice_step(high - low)
    low = -(abs(low) + step - 1) // step * step if low < 0 else 0  # away from zero
    high = -(-high // step) * step if high > 0 else 0
    if high == low:
        high = low + step
    return low, high, step


def _svg(width: int, height: int, title: str, desc: str, body: list[str], kind: str) -> SafeString:
    n = next(_ids)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" '
        f'aria-labelledby="chart-{n}-title chart-{n}-desc" data-chart="{kind}">'
        f'<title id="chart-{n}-title">{escape(title)}</title>'
        f'<desc id="chart-{n}-desc">{escape(desc)}</desc>'
    )
    return mark_safe(head + "".join(body) + "</svg>")  # every text in it is escaped


def line_chart(
    *, title: str, points: Sequence[Point], y_label: str, fmt: Format = str, x_label: str = "Day"
) -> SafeString:
    """An area chart of `points` in order (days), the value axis labelled with `fmt`."""
    values = [p.value for p in points]
    desc = (
        f"{y_label} by {x_label.lower()}, from {points[0].label} to {points[-1].label}."
        if (points)
        else f"{y_label}: no data."
    )
    if values:
        desc += f" Highest {fmt(max(values))}, total {fmt(sum(values))}."
    inner_w, inner_h = WIDTH - LEFT - RIGHT, LINE_HEIGHT - TOP - BOTTOM
    low, high, step = _scale(values)

    def y(value: int) -> int:
        return TOP + inner_h - (value - low) * inner_h // (high - low)

    def x(i: int) -> int:
        return LEFT + (i * inner_w // (len(points) - 1) if len(points) > 1 else inner_w // 2)

    body = ['<g class="grid" aria-hidden="true">']
    for tick in range(low, high + 1, step):
        body.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick)}" y2="{y(tick)}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y(tick) + 4}" text-anchor="end">'
            f"{escape(fmt(tick))}</text>"
        )
    body.append("</g>")
    if points:
        coords = [(x(i), y(p.value)) for i, p in enumerate(points)]
        line = " ".join(f"{cx},{cy}" for cx, cy in coords)
        base = y(max(low, 0))
        body.append(
            f'<polygon class="area" points="{coords[0][0]},{base} {line} {coords[-1][0]},{base}"/>'
            f'<polyline class="line" points="{line}"/>'
        )
        for (cx, cy), p in zip(coords, points, strict=True):
            body.append(
                f'<circle class="dot" cx="{cx}" cy="{cy}" r="3">'
                f"<title>{escape(p.label)}: {escape(fmt(p.value))}</title></circle>"
            )
        # At most about seven day labels, the first and the last always among them.
        every = max(1, -(-len(points) // 7))
        shown = set(range(0, len(points), every)) | {len(points) - 1}
        last = len(points) - 1
        for i in sorted(shown):
            # The outermost labels lean inwards so that they are not cut at the edges.
            anchor = "end" if i == last and last else "start" if i == 0 and last else "middle"
            body.append(
                f'<text class="tick" x="{x(i)}" y="{TOP + inner_h + 16}" text-anchor="{anchor}">'
                f"{escape(points[i].label)}</text>"
            )
    body.append(
        f'<text class="axis-label" x="{LEFT + inner_w // 2}" y="{LINE_HEIGHT - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="axis-label" x="14" y="{TOP + inner_h // 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + inner_h // 2})">{escape(y_label)}</text>'
    )
    return _svg(WIDTH, LINE_HEIGHT, title, desc, body, "line")


def bar_chart(
    *, title: str, bars: Sequence[Point], x_label: str, fmt: Format = str, y_label: str = ""
) -> SafeString:
    """Horizontal bars, one per point in the given order, each labelled with its value."""
    height = TOP + len(bars) * (BAR_HEIGHT + BAR_GAP) + BOTTOM
    values = [b.value for b in bars]
    low, high, _ = _scale(values)
    inner_w = WIDTH - BAR_LABEL - BAR_VALUE
    desc = (
        f"{x_label} by {y_label.lower() or 'item'}: "
        + ("; ".join(f"{b.label} {fmt(b.value)}" for b in bars) if bars else "no data")
        + "."
    )

    def x(value: int) -> int:
        return BAR_LABEL + (value - low) * inner_w // (high - low)

    body = []
    for i, bar in enumerate(bars):
        top = TOP + i * (BAR_HEIGHT + BAR_GAP)
        x0, x1 = sorted((x(0), x(bar.value)))
        label = bar.label if len(bar.label) <= 28 else bar.label[:27] + "…"
        body.append(
            f'<g class="bar">'
            f'<text class="bar-label" x="{BAR_LABEL - 8}" y="{top + BAR_HEIGHT * 2 // 3}" '
            f'text-anchor="end">{escape(label)}</text>'
            f'<rect x="{x0}" y="{top}" width="{max(x1 - x0, 1)}" height="{BAR_HEIGHT}">'
            f"<title>{escape(bar.label)}: {escape(fmt(bar.value))}</title></rect>"
            f'<text class="bar-value" x="{max(x1, x(0)) + 6}" y="{top + BAR_HEIGHT * 2 // 3}">'
            f"{escape(fmt(bar.value))}</text></g>"
        )
    axis_y = TOP + len(bars) * (BAR_HEIGHT + BAR_GAP)
    body.append(
        f'<line class="axis" x1="{BAR_LABEL}" x2="{BAR_LABEL + inner_w}" y1="{axis_y}" '
        f'y2="{axis_y}"/>'
        f'<text class="tick" x="{BAR_LABEL}" y="{axis_y + 14}" text-anchor="middle">'
        f"{escape(fmt(low))}</text>"
        f'<text class="tick" x="{BAR_LABEL + inner_w}" y="{axis_y + 14}" text-anchor="middle">'
        f"{escape(fmt(high))}</text>"
        f'<text class="axis-label" x="{BAR_LABEL + inner_w // 2}" y="{height - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    if y_label:
        body.append(
            f'<text class="axis-label" x="{BAR_LABEL - 8}" y="{TOP - 4}" text-anchor="end">'
            f"{escape(y_label)}</text>"
        )
    return _svg(WIDTH, height, title, desc, body, "bars")


def top_points(
    rows: Iterable[MetricRow], value: Callable[[MetricRow], int], limit: int = 10
) -> list[Point]:
    """The `limit` rows with the highest value, highest first, as points labelled like
    the rows in the table."""
    points = [Point(r.label, value(r)) for r in rows]
    points.sort(key=lambda p: (-p.value, p.label))
    return points[:limit]


def dashboard_charts(report: Report, kind: str) -> list[SafeString]:
    """The dashboard's charts: leads and the role's money (revenue, spend or earnings, in
    its first currency) by day, and the top offers by leads."""
    columns = {c.key: c for c in report_columns(report.visibility, kind)}
    leads = columns["leads"]
    days = report.breakdowns.get("day", [])
    charts = [
        line_chart(
            title="Leads by day",
            points=day_points(days, report.start, report.end, lambda r: r.leads),
            y_label="Leads",
            x_label="Day (UTC)",
        )
    ]
    money = columns.get("revenue") or columns.get("payout")
    currency = report.currencies[0] if report.currencies else ""
    if money is not None and currency:

        def amount(row: MetricRow) -> int:
            return money.value(row, currency) or 0

        charts.append(
            line_chart(
                title=f"{money.title} by day ({currency})",
                points=day_points(days, report.start, report.end, amount),
                y_label=f"{money.title} ({currency})",
                fmt=lambda n: cell_format(money, n, currency),
                x_label="Day (UTC)",
            )
        )
    if "offer" in report.breakdowns:
        charts.append(
            bar_chart(
                title="Top offers by leads",
                bars=top_points(report.breakdowns["offer"], lambda r: r.leads),
                x_label="Leads",
                y_label="Offer",
                fmt=lambda n: cell_format(leads, n, ""),
            )
        )
    return charts
