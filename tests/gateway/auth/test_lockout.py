"""Lockout: N failures inside the window lock for a period; an old window starts over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.auth.lockout import CLEAR, LockoutRule, after_failure

RULE = LockoutRule(max_failures=5, window=timedelta(minutes=15), lock_for=timedelta(minutes=30))
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_fifth_failure_in_the_window_locks() -> None:
    state = CLEAR
    for i in range(4):
        state = after_failure(state, RULE, NOW + timedelta(minutes=i))
        assert not state.locked(NOW + timedelta(minutes=i))
    state = after_failure(state, RULE, NOW + timedelta(minutes=4))
    assert state.locked(NOW + timedelta(minutes=4))
    assert state.locked_until == NOW + timedelta(minutes=34)
    assert not state.locked(NOW + timedelta(minutes=34))


def test_failures_spread_beyond_the_window_do_not_lock() -> None:
    state = CLEAR
    for i in range(10):
        state = after_failure(state, RULE, NOW + timedelta(minutes=8 * i))
        assert not state.locked(NOW + timedelta(minutes=8 * i)), i
