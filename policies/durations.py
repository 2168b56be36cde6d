"""Durations as people write them in the config: ``"500ms"``, ``"15m"``, ``"7d"``.

The one parser for the policy specs and the gateway's config alike (``policies``
may not import ``gateway``, so it lives here). Whether a duration may be zero is the
caller's rule, not this module's.

No I/O here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_EXPECTED = "expected a duration such as 30s, 15m, 24h or 7d"


def parse_duration(text: str) -> timedelta:
    """``"500ms"``, ``"90s"``, ``"15m"``, ``"12h"``, ``"7d"`` -> ``timedelta``."""
    m = _DURATION_RE.match(text)
    if m is None:
        raise ValueError(f"'{text}' is not a duration; use a number with ms, s, m, h or d "
                         "(e.g. 30s, 15m, 24h)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def duration_from_value(value: Any) -> timedelta:
    """A config value -> ``timedelta``: text as above, a number of seconds, or a timedelta.

    A pydantic ``BeforeValidator``: anything else (a boolean, a list, a negative
    number) is refused with a sentence a person understands.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(_EXPECTED)
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(_EXPECTED)
