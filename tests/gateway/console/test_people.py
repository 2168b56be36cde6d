"""The console's users and sessions pages over real TLS: each change made through the
CLI's use-cases, in force on the gateway, and recorded with the console user as actor."""

from __future__ import annotations

from gateway.audit.query import AuditQuery
from tests.gateway.conftest import Gateway
from tests.gateway.console.conftest import Admin, console, console_config, csrf_of

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
    assert b"authenticator of alice is forgotten" in body
    assert await _actors(gateway, "totp.reset") == [("console:alice", "alice")]
    await gateway.wait_for(lambda: _signed_out(gateway, admin), timeout=1.0)  # sessions too
