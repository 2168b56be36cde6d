"""Shared by the console tests: the console on ``nope.test`` (a name of the test
server certificate that no app uses) for the group ``it-admins``, and alice made an
admin and signed in there with her second factor."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.auth.sessions import COOKIE
from gateway.manage import users
from tests.gateway.auth.conftest import PASSWORD, Alice, alice
from tests.gateway.conftest import Gateway

__all__ = ["alice"]  # the fixture, for the tests of this folder

CONSOLE = "nope.test"
console_config = pytest.mark.config(console={"host": CONSOLE, "group": "it-admins",
                                             "mfa_max_age": "5m"})


def csrf_of(html: bytes) -> str:
    match = re.search(rb'name="csrf" value="([^"]+)"', html)
    assert match, html[:400]
    return match.group(1).decode()


@dataclass
class Admin:
    alice: Alice
    cookie: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Accept": "text/html", "Cookie": f"{COOKIE}={self.cookie}"}


async def console(gw: Gateway, method: str, path: str, *, cookie: str | None = None,
                  user: str = "alice", **kwargs: Any) -> tuple[int, Any, Any]:
    headers = {"Accept": "text/html", **kwargs.pop("headers", {})}
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    return await gw.request(method, path, host=CONSOLE, user=user, headers=headers, **kwargs)


async def sign_in(gw: Gateway, alice: Alice, user: str = "alice") -> str:
    """Sign in on the console host; the session cookie."""
    status, body, _ = await console(gw, "GET", "/.certgate/login?next=/", user=user)
    assert status == 200, body[:300]
    status, _, headers = await console(gw, "POST", "/.certgate/login", user=user, data={
        "csrf": csrf_of(body), "next": "/", "password": PASSWORD, "code": alice.code()})
    assert status == 303, status
    return str(headers["Set-Cookie"]).split(";", 1)[0].split("=", 1)[1]


async def make_admin(gw: Gateway, name: str = "alice") -> None:
    store = await gw.store()
    try:
        found = await store.get_user(name)
        await users.set_groups(store, name, [*found.groups, "it-admins"])
    finally:
        await store.close()

    async def member() -> bool:  # the group reached this node: the policy asks to sign in
        return (await console(gw, "GET", "/", user=name,
                              headers={"Accept": "application/json"}))[0] == 401

    await gw.wait_for(member)


def real_time(alice: Alice) -> None:
    """Move the pinned clock up to the real time (less than a minute, once signed in):
    a CRL is never dated before the last one, so a use-case given a clock behind the
    gateway's own CRL would wait for it."""
    alice.clock.now = max(alice.clock.now, datetime.now(UTC))


@pytest.fixture
async def admin(gateway: Gateway, alice: Alice) -> Admin:
    await make_admin(gateway)
    cookie = await sign_in(gateway, alice)
    real_time(alice)
    return Admin(alice, cookie)
