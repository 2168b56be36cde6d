"""Durations as people write them, one parser for policies and the gateway's config."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from policies.durations import duration_from_value, parse_duration


@pytest.mark.parametrize(("text", "expected"), [
    ("500ms", timedelta(milliseconds=500)), ("90s", timedelta(seconds=90)),
    ("15m", timedelta(minutes=15)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)),
    (" 1.5h ", timedelta(minutes=90)),
])
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "m15", "15 minutes", "-5s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("value", "expected"), [
    ("15m", timedelta(minutes=15)), (90, timedelta(seconds=90)), (0.5, timedelta(seconds=0.5)),
    (0, timedelta(0)), (timedelta(hours=1), timedelta(hours=1)),
])
def test_values(value: Any, expected: timedelta) -> None:
    assert duration_from_value(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    (True, "expected a duration such as 30s"), ([], "expected a duration such as 30s"),
    (None, "expected a duration such as 30s"), (-1, "cannot be negative"),
    ("soon", "not a duration"),
])
def test_bad_values(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        duration_from_value(value)
