"""The console's users and sessions pages over real TLS: each change made through the
CLI's use-cases, in force on the gateway, and recorded with the console user as actor."""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from sqlalchemy import event

from gateway.audit.query import AuditQuery
from gateway.auth.resetcodes import code_matches, well_formed
from gateway.console import handler
from gateway.manage import factors, resets, users
from tests.gateway.conftest import Gateway
from tests.gateway.console.conftest import Admin, console, console_config, csrf_of

if TYPE_CHECKING:
    from gateway.console.handler import Visit

pytestmark = console_config


async def _post(gateway: Gateway, admin: Admin, page: str, path: str,
                **form: str) -> bytes:
    status, body, _ = await console(gateway, "GET", page, cookie=admin.cookie)
    assert status == 200, body[:400]
    status, body, _ = await console(gateway, "POST", path, cookie=admin.cookie,
                                    data={"csrf": csrf_of(body), **form})
    assert status == 200, body[:600]
    return bytes(body)


async def _actors(gateway: Gateway, type_: str) -> list[tuple[str, str]]:
    store = await gateway.store()
    try:
        rows = await store.search_audit(AuditQuery(type=type_))
    finally:
        await store.close()
    return [(r["actor"], r["user"]) for r in rows if str(r["actor"]).startswith("console:")]


async def _signed_out(gateway: Gateway, admin: Admin) -> bool:
    status, _, headers = await console(gateway, "GET", "/", cookie=admin.cookie)
    return status == 303 and str(headers["Location"]).startswith("/.certgate/login")


async def test_add_group_disable_enable(gateway: Gateway, admin: Admin) -> None:
    body = await _post(gateway, admin, "/users", "/users/add", user="frank",
                       email="frank@example.test", groups="staff, accounting")
    assert b"frank was added" in body
    status, body, _ = await console(gateway, "GET", "/users?user=fra", cookie=admin.cookie)
    assert status == 200 and b"accounting, staff" in body
    body = await _post(gateway, admin, "/users/confirm?action=groups&user=frank",
                       "/users/groups", user="frank", groups="staff")
    assert b"frank is in: staff." in body

    assert (await gateway.request("GET", "/", user="bob"))[0] == 403  # bob: sales, not wiki
    body = await _post(gateway, admin, "/users/confirm?action=disable&user=dave",
                       "/users/disable", user="dave")
    assert b"dave is disabled" in body

    async def refused() -> bool:
        return (await gateway.request("GET", "/", user="dave"))[0] == 403

    assert await gateway.wait_for(refused, timeout=1.0) < 1.0
    await _post(gateway, admin, "/users/confirm?action=enable&user=dave", "/users/enable",
                user="dave")

    async def back() -> bool:
        return (await gateway.request("GET", "/", user="dave"))[0] == 200

    await gateway.wait_for(back, timeout=1.0)
    assert await _actors(gateway, "user.add") == [("console:alice", "frank")]
    assert await _actors(gateway, "user.disable") == [("console:alice", "dave")]
    assert await _actors(gateway, "user.groups") == [("console:alice", "frank")]


async def test_sessions_list_and_kill_and_unlock(gateway: Gateway, admin: Admin) -> None:
    status, body, _ = await console(gateway, "GET", "/sessions?user=alice", cookie=admin.cookie)
    assert status == 200 and b"End every session of alice" in body
    # Unlock: nothing locked is said plainly and not recorded.
    body = await _post(gateway, admin, "/users/confirm?action=unlock&user=bob",
                       "/users/unlock", user="bob")
    assert b"bob was not locked" in body and await _actors(gateway, "unlock") == []
    # Ending her own sessions signs the admin out of the console too.
    body = await _post(gateway, admin, "/sessions?user=alice", "/sessions/kill", user="alice")
    assert b"Ended 1 session(s)" in body
    await gateway.wait_for(lambda: _signed_out(gateway, admin), timeout=1.0)
    assert await _actors(gateway, "session.kill") == [("console:alice", "alice")]


async def test_reset_totp(gateway: Gateway, admin: Admin) -> None:
    body = await _post(gateway, admin, "/users/confirm?action=reset-totp&user=alice",
                       "/users/reset-totp", user="alice")
    assert b"authenticator of alice is forgotten" in body and b"totp-enroll" not in body
    assert b"sets up a new one on their phone" in body
    assert await _actors(gateway, "totp.pending") == [("console:alice", "alice")]
    store = await gateway.store()
    try:
        totp = await store.get_totp("alice")
    finally:
        await store.close()
    assert totp is not None and totp.state == "pending"
    await gateway.wait_for(lambda: _signed_out(gateway, admin), timeout=1.0)  # sessions too


def _code_of(body: bytes) -> str:
    match = re.search(rb'<span class="secret" id="reset-code">([a-z0-9-]+)</span>', body)
    assert match, body[:800]
    return match.group(1).decode()


async def test_a_password_reset_shows_its_code_once(gateway: Gateway, admin: Admin) -> None:
    status, body, _ = await console(gateway, "GET", "/users", cookie=admin.cookie)
    assert b"/users/confirm?action=password-reset&amp;user=bob" in body
    status, body, _ = await console(gateway, "GET", "/users/confirm?action=password-reset"
                                    "&user=bob", cookie=admin.cookie)
    assert status == 200 and b"Set a password reset for bob" in body
    status, body, headers = await console(gateway, "POST", "/users/password-reset",
                                          cookie=admin.cookie,
                                          data={"csrf": csrf_of(body), "user": "bob"})
    assert status == 200 and headers["Cache-Control"] == "no-store"
    code = _code_of(body)
    assert well_formed(code)
    assert b"Tell bob this code by phone. It works once, until" in body
    store = await gateway.store()
    try:
        found = await store.open_password_reset("bob", gateway.runtime.clock())
        bob = await store.get_user("bob")
    finally:
        await store.close()
    assert found is not None and found.created_by == "console:alice"
    assert code_matches(found.code_hash, code) and bob.password_hash is None
    assert await _actors(gateway, "password.reset") == [("console:alice", "bob")]
    status, body, _ = await console(gateway, "GET", "/users?user=bob", cookie=admin.cookie)
    assert b"reset open until" in body and code.encode() not in body


async def test_a_new_person_gets_a_code_to_choose_their_password(gateway: Gateway,
                                                                 admin: Admin) -> None:
    body = await _post(gateway, admin, "/users", "/users/add", user="gina", groups="staff")
    assert b"gina was added" in body and b"set up their authenticator app" in body
    code = _code_of(body)
    store = await gateway.store()
    try:
        totp = await store.get_totp("gina")
        found = await store.open_password_reset("gina", gateway.runtime.clock())
    finally:
        await store.close()
    assert totp is not None and totp.state == "pending"
    assert found is not None and code_matches(found.code_hash, code)
    assert await _actors(gateway, "totp.pending") == [("console:alice", "gina")]
    assert await _actors(gateway, "password.reset") == [("console:alice", "gina")]


async def test_the_users_page_reads_in_a_fixed_number_of_queries(
        gateway: Gateway, admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    """The users page reads every user's authenticator state and open reset in one
    query each: as many statements for 11 users as for 5 (counted on the gateway's own
    engine, only those the page's handler issues, not the gateway's background work)."""
    async def prepare(names: list[str]) -> None:
        store = await gateway.store()
        try:
            for name in names:
                await users.add_user(store, name, groups=["staff"])
                await factors.mark_totp_pending(store, gateway.runtime.state.config, name)
                await resets.start_password_reset(store, name, gateway.runtime.clock(),
                                                  created_by="test")
        finally:
            await store.close()

    page = handler.GET_ROUTES["/users"]
    inside: list[asyncio.Task[Any] | None] = [None]
    statements: list[str] = []

    async def counted(visit: Visit) -> web.Response:
        inside[0] = asyncio.current_task()
        try:
            return await page(visit)
        finally:
            inside[0] = None

    def seen(*args: Any) -> None:
        if inside[0] is not None and asyncio.current_task() is inside[0]:
            statements.append(args[2])

    async def users_page(expected: int) -> tuple[int, bytes]:
        statements.clear()
        status, body, _ = await console(gateway, "GET", "/users", cookie=admin.cookie)
        assert status == 200 and body.count(b"<tr><td>") == expected, body[:600]
        return len(statements), bytes(body)

    monkeypatch.setitem(handler.GET_ROUTES, "/users", counted)
    engine = gateway.runtime.store._engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await prepare(["hana"])
        few, body = await users_page(5)
        assert body.count(b"reset open until") == 1 and body.count(b"<td>pending</td>") == 1
        await prepare([f"user{i}" for i in range(7)])
        many, body = await users_page(12)
        assert body.count(b"reset open until") == 8 and body.count(b"<td>pending</td>") == 8
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert few == many, statements
async def test_change_and_remove_an_email_address(gateway: Gateway, admin: Admin) -> None:
    status, body, _ = await console(gateway, "GET", "/users", cookie=admin.cookie)
    assert b"/users/confirm?action=email&amp;user=bob" in body
    body = await _post(gateway, admin, "/users/confirm?action=email&user=bob",
                       "/users/email", user="bob", email="bob.new@example.test")
    assert b"The e-mail address of bob is bob.new@example.test." in body

    async def seen_by_gateway(wanted: str | None) -> bool:
        status, data, _ = await gateway.request("GET", "/.certgate/whoami", user="bob")
        return status == 200 and data["email"] == wanted

    await gateway.wait_for(lambda: seen_by_gateway("bob.new@example.test"), timeout=1.0)
    body = await _post(gateway, admin, "/users/confirm?action=email&user=bob",
                       "/users/email", user="bob", email="")
    assert b"bob has no e-mail address now." in body
    await gateway.wait_for(lambda: seen_by_gateway(None), timeout=1.0)
    # A bad address is refused, plainly, and changes nothing.
    status, page, _ = await console(gateway, "GET", "/users/confirm?action=email&user=bob",
                                    cookie=admin.cookie)
    status, page, _ = await console(gateway, "POST", "/users/email", cookie=admin.cookie,
                                    data={"csrf": csrf_of(page), "user": "bob",
                                          "email": "<b>not an address"})
    assert status == 400 and b"is not an email address" in page and b"<b>not" not in page
    store = await gateway.store()
    try:
        assert (await store.get_user("bob")).email is None
        rows = await store.search_audit(AuditQuery(type="user.email"))
    finally:
        await store.close()
    changes = sorted((r["seq"], r["actor"], r["user"], r["reason"], json.loads(r["detail"]))
                     for r in rows)
    assert [change[1:] for change in changes] == [
        ("console:alice", "bob", "email set", {"before": None, "after": "bob.new@example.test"}),
        ("console:alice", "bob", "email cleared", {"before": "bob.new@example.test",
                                                   "after": None})]
