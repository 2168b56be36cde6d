"""CSRF tokens: bound to their form's owner, signed, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.auth.csrf import csrf_token, csrf_valid

KEY = b"k" * 32
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_valid_for_its_binding_only() -> None:
    token = csrf_token(KEY, "fp-alice", NOW)
    assert csrf_valid(KEY, token, "fp-alice", NOW + timedelta(minutes=5))
    assert not csrf_valid(KEY, token, "fp-mallory", NOW)
    assert not csrf_valid(b"x" * 32, token, "fp-alice", NOW)


@pytest.mark.parametrize("token", [None, "", "abc", "zz.123", "1.", ".abc"])
def test_malformed_tokens(token: str | None) -> None:
    assert not csrf_valid(KEY, token, "fp-alice", NOW)


def test_expiry_and_future_tokens() -> None:
    token = csrf_token(KEY, "fp", NOW)
    assert csrf_valid(KEY, token, "fp", NOW + timedelta(minutes=59))
    assert not csrf_valid(KEY, token, "fp", NOW + timedelta(minutes=62))
    future = csrf_token(KEY, "fp", NOW + timedelta(minutes=10))
    assert not csrf_valid(KEY, future, "fp", NOW)
