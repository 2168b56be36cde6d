"""Rate limits for failed logins: N failures within a window lock for a period.

Counted per user and per certificate (a thief with one stolen certificate can't
spread guesses over users, nor one user's guesses over certificates). The counter
is plain data the store keeps and the change feed shares, so a lockout on one
node holds on every node; this module only decides.

Pure: no I/O, no clock reads (the caller passes ``now``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class LockoutRule:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Failures:
    """Failed attempts of one user (or certificate) in the current window."""

    count: int = 0
    window_start: datetime | None = None
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def after_failure(state: Failures, rule: LockoutRule, now: datetime) -> Failures:
    """The state after one more failure: a new window when the old one is over, a lock
    when the count reaches the limit."""
    if state.window_start is None or now - state.window_start > rule.window:
        state = Failures(0, now, state.locked_until)
    count = state.count + 1
    if count >= rule.max_failures:
        return Failures(count, state.window_start, now + rule.lock_for)
    return replace(state, count=count)


CLEAR = Failures()
