"""The access review's two charts as geometry: bars by reason, allowed/denied over time.

Numbers in, rectangles and labels out (SVG user units); the report's template
draws them, so every label goes through its autoescaping. A period longer than
three months is shown per week, longer than two years per month, so a chart
never has more bars than it has room for. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

WIDTH = 880
_LABEL = 230  # left column of the reason chart
_ROW = 26


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class HBarChart:
    width: int
    height: int
    label_width: int
    bars: list[Bar]


def reason_chart(items: Sequence[tuple[str, int]]) -> HBarChart:
    """One horizontal bar per (label, count), longest first as given."""
    top = max((value for _, value in items), default=0) or 1
    room = WIDTH - _LABEL - 90  # the count is written after the bar
    bars = [Bar(label, value, _LABEL, i * _ROW + 4, max(1.0, room * value / top), _ROW - 8)
            for i, (label, value) in enumerate(items)]
    return HBarChart(WIDTH, max(1, len(items)) * _ROW + 4, _LABEL, bars)


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class Slot:
    label: str  # the day, week or month, for the tooltip
    axis: str  # the label under the axis, or "" for most slots
    x: float
    allowed: Bar
    denied: Bar


@dataclass(frozen=True)
class TimeChart:
    width: int
    height: int
    left: int
    base: float  # y of the axis
    unit: str  # "day", "week" or "month"
    ticks: list[Tick]
    slots: list[Slot]


def _bucket(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def _nice_top(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above ``value``."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def time_chart(first: date, last: date, counts: Sequence[tuple[str, int, int]]) -> TimeChart:
    """Allowed and denied side by side for every day (week, month) from ``first`` to
    ``last``, empty ones included; ``counts``: (YYYY-MM-DD, allowed, denied)."""
    span = (last - first).days + 1
    unit = "day" if span <= 92 else "week" if span <= 731 else "month"
    buckets: dict[date, list[int]] = {}
    day = first
    while day <= last:
        buckets.setdefault(_bucket(day, unit), [0, 0])
        day += timedelta(days=1)
    for text, allowed, denied in counts:
        key = _bucket(date.fromisoformat(text), unit)
        if key in buckets:
            buckets[key][0] += allowed
            buckets[key][1] += denied
    top = _nice_top(max((v for pair in buckets.values() for v in pair), default=0) or 1)
    left, height, plot = 60, 240, 200
    base = 10 + plot
    slot = (WIDTH - left - 10) / max(1, len(buckets))
    bar = max(1.0, slot * 0.4)
    every = max(1, round(len(buckets) / 8))  # about eight labels under the axis
    slots = []
    for i, (key, (allowed, denied)) in enumerate(sorted(buckets.items())):
        x = left + i * slot
        h_a, h_d = plot * allowed / top, plot * denied / top
        label = key.strftime("%Y-%m") if unit == "month" else key.isoformat()
        name = f"week of {label}" if unit == "week" else label
        slots.append(Slot(name, label if i % every == 0 else "", x,
                          Bar("allowed", allowed, x + slot * 0.1, base - h_a, bar, h_a),
                          Bar("denied", denied, x + slot * 0.1 + bar, base - h_d, bar, h_d)))
    ticks = [Tick(base - plot * value / top, value)
             for value in sorted({top * k // 4 for k in range(5)})]
    return TimeChart(WIDTH, height, left, base, unit, ticks, slots)
