"""Shared by the sign-in tests: alice with a password and an enrolled TOTP, and the
runtime's clock pinned so that the test computes the codes the gateway expects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from gateway.auth.totp import code_at_step, time_step
from gateway.manage import factors, users
from tests.gateway.conftest import Gateway

PASSWORD = "correct horse battery"


@dataclass
class Clock:
    """The runtime's clock, moved by the test: TOTP steps without waiting 30 s."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Alice:
    secret: str
    recovery: tuple[str, ...]
    clock: Clock

    def code(self, offset: int = 0) -> str:
        return code_at_step(self.secret, time_step(self.clock.now) + offset)


@pytest.fixture
async def alice(gateway: Gateway) -> Alice:
    store = await gateway.store()
    try:
        await users.set_password(store, "alice", PASSWORD)
        await users.set_password(store, "carol", PASSWORD)
        enrolled = await factors.enroll_totp(store, gateway.runtime.state.config, "alice")
    finally:
        await store.close()
    # 5 s into a TOTP step, and never ahead of the real time: the test's own checks
    # (a JWT's iat, for one) read the real clock.
    now = datetime.now(UTC)
    start = now.replace(second=5, microsecond=0)
    clock = Clock(start if start <= now else start - timedelta(minutes=1))
    gateway.runtime.clock = clock
    return Alice(enrolled.secret, enrolled.recovery_codes, clock)


async def with_authenticator(gateway: Gateway, alice: Alice, name: str) -> Alice:
    """Another person (``name``) with an authenticator app, on alice's clock."""
    store = await gateway.store()
    try:
        enrolled = await factors.enroll_totp(store, gateway.runtime.state.config, name)
    finally:
        await store.close()
    return Alice(enrolled.secret, enrolled.recovery_codes, alice.clock)
