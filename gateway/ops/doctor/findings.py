"""What a doctor check returns: a ``Finding`` (pass, warn or fail, with the fix).

Plain values only: no I/O, no printing. ``exit_code`` maps the worst finding to the
command's exit code (0 pass, 1 warn, 2 fail: the Nagios convention, so a monitoring
system can run ``certgate doctor`` as a check).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


_RANK = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One result: ``check`` names what was looked at, ``fix`` says what to do."""

    check: str
    status: Status
    message: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}


def passed(check: str, message: str) -> Finding:
    return Finding(check, Status.PASS, message)


def warned(check: str, message: str, fix: str) -> Finding:
    return Finding(check, Status.WARN, message, fix)


def failed(check: str, message: str, fix: str) -> Finding:
    return Finding(check, Status.FAIL, message, fix)


def worst(findings: Iterable[Finding]) -> Status:
    return max((f.status for f in findings), key=_RANK.__getitem__, default=Status.PASS)


def exit_code(findings: Iterable[Finding]) -> int:
    return _RANK[worst(findings)]
