"""Password + TOTP sign-in end to end over real TLS: the login flow, its refusals,
lockout, recovery codes, sessions bound to the certificate, logout and kill."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import jwt
import pytest

from gateway.auth.csrf import csrf_token
from gateway.auth.sessions import COOKIE
from gateway.manage import factors
from tests.gateway.auth.conftest import PASSWORD, Alice
from tests.gateway.conftest import Gateway, apps

SECURE = "secure.test"


def csrf_of(html: bytes) -> str:
    match = re.search(rb'name="csrf" value="([^"]+)"', html)
    assert match, html[:400]
    return match.group(1).decode()


async def login_form(gw: Gateway, user: str = "alice", next_: str = "/") -> str:
    status, body, _ = await gw.request("GET", f"/.certgate/login?next={next_}", host=SECURE,
                                       user=user, headers={"Accept": "text/html"})
    assert status == 200
    assert isinstance(body, bytes)
    return csrf_of(body)


async def sign_in(gw: Gateway, *, password: str = PASSWORD, code: str, csrf: str | None = None,
                  next_: str = "/", user: str = "alice",
                  json: bool = False) -> tuple[int, Any, Any]:
    token = await login_form(gw, user) if csrf is None else csrf
    return await gw.request("POST", "/.certgate/login", host=SECURE, user=user,
                            headers={"Accept": "application/json" if json else "text/html"},
                            data={"csrf": token, "next": next_, "password": password,
                                  "code": code})


def session_cookie(headers: Any) -> str:
    cookie = headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie, cookie
    assert "Domain" not in cookie and "Max-Age" not in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert len(value) >= 43  # >= 256 random bits, base64
    return value


async def app_get(gw: Gateway, cookie: str | None, *, user: str = "alice", path: str = "/",
                  html: bool = False) -> tuple[int, Any, Any]:
    headers = {"Accept": "text/html" if html else "application/json"}
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    return await gw.request("GET", path, host=SECURE, user=user, headers=headers)


async def test_sign_in_reaches_the_app_with_factors(gateway: Gateway, alice: Alice) -> None:
    status, _, headers = await app_get(gateway, None, path="/reports?y=2026", html=True)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/reports%3Fy%3D2026")
    status, body, _ = await app_get(gateway, None)
    assert (status, body["error"], body["login"]) == (401, "mfa-required",
                                                      "/.certgate/login?next=/")
    status, page, _ = await gateway.request("GET", "/.certgate/login?next=/reports",
                                            host=SECURE, headers={"Accept": "text/html"})
    assert status == 200 and b"Signed in with the certificate of <strong>alice" in page
    assert gateway.seen.requests == []

    status, _, headers = await sign_in(gateway, code=alice.code(), next_="/reports?y=2026")
    assert (status, headers["Location"]) == (303, "/reports?y=2026")
    cookie = session_cookie(headers)
    status, body, _ = await app_get(gateway, cookie, path="/reports")
    assert status == 200
    seen = body["headers"]
    assert seen["X-Certgate-User"] == "alice" and seen["X-Certgate-Factors"] == "mtls,pwd,otp"
    _, keys, _ = await gateway.request("GET", "/.certgate/jwks.json")
    # Valid by the gateway's (injected) clock, not this machine's: a loaded run can
    # take longer than the assertion's lifetime between the fixture and here.
    claims = jwt.decode(seen["X-Certgate-Assertion"], jwt.PyJWK(keys["keys"][0]).key,
                        algorithms=["ES256"], audience=f"https://{SECURE}",
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iat"] <= alice.clock.now.timestamp() < claims["exp"]
    assert claims["amr"] == ["mtls", "pwd", "otp"]
    assert claims["auth_time"] == int(alice.clock.now.timestamp())
    assert seen["X-Certgate-Auth-Time"] == str(claims["auth_time"])
    assert COOKIE not in seen.get("Cookie", "")  # the gateway's cookie stays with it


@pytest.mark.parametrize("case", ["wrong-password", "wrong-code", "two-steps-ahead",
                                  "reused-code", "no-csrf", "foreign-csrf", "old-csrf"])
async def test_refusals_never_say_which_factor(gateway: Gateway, alice: Alice, case: str) -> None:
    code, password, csrf = alice.code(), PASSWORD, None
    if case == "wrong-password":
        password = "wrong horse battery"
    elif case == "wrong-code":
        code = f"{(int(code) + 1) % 10**6:06d}"
    elif case == "two-steps-ahead":
        code = alice.code(+2)
    elif case == "reused-code":
        status, _, _ = await sign_in(gateway, code=code)
        assert status == 303
    elif case == "no-csrf":
        csrf = ""
    elif case == "foreign-csrf":  # a token made for another certificate
        box = gateway.runtime.secret_box()
        assert box is not None
        csrf = csrf_token(box.derived_key("csrf"), "b" * 64, alice.clock.now)
    elif case == "old-csrf":
        csrf = await login_form(gateway)
        alice.clock.advance(2 * 3600)
        code = alice.code()
    status, body, headers = await sign_in(gateway, password=password, code=code, csrf=csrf,
                                          json=True)
    expected = (403, "csrf-invalid") if "csrf" in case else (401, "login-failed")
    assert (status, body["error"]) == expected
    assert "Set-Cookie" not in headers
    if "csrf" not in case:
        assert body["message"] == "The password or the code is not right. Check both and try again."
    assert gateway.seen.requests == []


@pytest.mark.parametrize(("next_", "landing"), [
    ("/a/b?c=1", "/a/b?c=1"), ("https://evil.example/", "/"), ("//evil.example/", "/"),
    ("/\\evil.example", "/"), ("/.certgate/login", "/"), ("", "/"), ("javascript:alert(1)", "/"),
])
async def test_next_stays_on_this_host(gateway: Gateway, alice: Alice, next_: str,
                                       landing: str) -> None:
    status, _, headers = await sign_in(gateway, code=alice.code(), next_=next_)
    assert (status, headers["Location"]) == (303, landing)


async def test_cookie_is_useless_with_another_certificate(gateway: Gateway, alice: Alice) -> None:
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    assert (await app_get(gateway, cookie))[0] == 200
    # carol is in staff too: her certificate with alice's cookie is no session.
    status, body, _ = await app_get(gateway, cookie, user="carol")
    assert (status, body["error"]) == (401, "mfa-required")
    assert (await app_get(gateway, "forged-" + cookie))[0] == 401


async def test_idle_and_absolute_expiry(gateway: Gateway, alice: Alice) -> None:
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    for _ in range(3):  # used every 50 minutes: the 1 h idle limit never strikes
        alice.clock.advance(50 * 60)
        assert (await app_get(gateway, cookie))[0] == 200
    alice.clock.advance(61 * 60)
    assert (await app_get(gateway, cookie))[0] == 401  # idle
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    for _ in range(14):  # 14 x 55 min > 12 h absolute
        alice.clock.advance(55 * 60)
        status = (await app_get(gateway, cookie))[0]
    assert status == 401


@apps(secure={"mfa_max_age": "15m"})
async def test_step_up_when_the_code_is_too_old(gateway: Gateway, alice: Alice) -> None:
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    alice.clock.advance(10 * 60)
    assert (await app_get(gateway, cookie))[0] == 200
    alice.clock.advance(6 * 60)
    status, body, _ = await app_get(gateway, cookie)
    assert (status, body["error"]) == (401, "mfa-too-old")
    status, _, headers = await sign_in(gateway, code=alice.code())
    assert status == 303
    assert (await app_get(gateway, session_cookie(headers)))[0] == 200


async def test_lockout_then_unlock(gateway: Gateway, alice: Alice) -> None:
    token = await login_form(gateway)
    for _ in range(4):
        status, body, _ = await sign_in(gateway, password="not it at all", code=alice.code(),
                                        json=True)
        assert (status, body["error"]) == (401, "login-failed")
    status, body, _ = await sign_in(gateway, password="not it at all", code=alice.code(),
                                    json=True)
    assert (status, body["error"]) == (429, "locked-out") and "locked_until" in body
    # Locked: even the right password and code are refused, and the page says so.
    status, body, _ = await sign_in(gateway, code=alice.code(), csrf=token, json=True)
    assert (status, body["error"]) == (429, "locked-out")
    status, page, _ = await gateway.request("GET", "/.certgate/login", host=SECURE,
                                            headers={"Accept": "text/html"})
    assert status == 200 and b"Sign-in is locked until" in page and b"your administrator" in page
    store = await gateway.store()
    try:
        assert await factors.unlock_user(store, "alice") == 2  # the user and the certificate
    finally:
        await store.close()
    status, _, headers = await sign_in(gateway, code=alice.code())
    assert status == 303 and session_cookie(headers)


async def test_parallel_guesses_cannot_slip_past_the_count(gateway: Gateway,
                                                          alice: Alice) -> None:
    """Twelve wrong sign-ins sent at once: at most four are answered "wrong" (the fifth
    failure locks), every one is counted, and sign-in ends up locked."""
    token = await login_form(gateway)
    results = await asyncio.gather(*(
        sign_in(gateway, password=f"guess {i}", code=alice.code(), csrf=token, json=True)
        for i in range(12)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(401) <= 4 and set(statuses) <= {401, 429}, statuses
    store = await gateway.store()
    try:
        counted = await store.failures(["user:alice"])
    finally:
        await store.close()
    assert counted["user:alice"].count == 12
    status, body, _ = await sign_in(gateway, code=alice.code(), csrf=token, json=True)
    assert (status, body["error"]) == (429, "locked-out")


async def test_a_recovery_code_works_once(gateway: Gateway, alice: Alice) -> None:
    code = alice.recovery[3]
    status, _, headers = await sign_in(gateway, code=code.upper())
    assert status == 303
    status, body, _ = await app_get(gateway, session_cookie(headers))
    assert status == 200 and body["headers"]["X-Certgate-Factors"] == "mtls,pwd,recovery"
    status, body, _ = await sign_in(gateway, code=code, json=True)
    assert (status, body["error"]) == (401, "login-failed")


async def test_logout_and_kill_end_sessions(gateway: Gateway, alice: Alice) -> None:
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    status, page, _ = await gateway.request(
        "GET", "/.certgate/whoami", host=SECURE,
        headers={"Accept": "text/html", "Cookie": f"{COOKIE}={cookie}"})
    assert status == 200 and b"Sign out" in page
    token = csrf_of(page)
    status, _, _ = await gateway.request("POST", "/.certgate/logout", host=SECURE,
                                         headers={"Cookie": f"{COOKIE}={cookie}"},
                                         data={"csrf": "forged"})
    assert status == 403
    status, _, headers = await gateway.request("POST", "/.certgate/logout", host=SECURE,
                                               headers={"Cookie": f"{COOKIE}={cookie}",
                                                        "Accept": "text/html"},
                                               data={"csrf": token})
    assert status == 200 and f"{COOKIE}=\"\"" in headers["Set-Cookie"]
    assert (await app_get(gateway, cookie))[0] == 401

    alice.clock.advance(30)
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    assert (await app_get(gateway, cookie))[0] == 200
    store = await gateway.store()
    try:
        listed = await factors.list_sessions(store, "alice")
        assert [s.factors for s in listed] == [("mtls", "pwd", "otp")]
        assert await factors.end_sessions(store, session_id=listed[0].short_id)
    finally:
        await store.close()

    async def ended() -> bool:
        return (await app_get(gateway, cookie))[0] == 401

    await gateway.wait_for(ended, timeout=1.5)  # through the change feed, within a second


async def test_no_authenticator_yet_is_said_plainly(gateway: Gateway, alice: Alice) -> None:
    status, body, _ = await gateway.request("GET", "/.certgate/login", host=SECURE, user="bob")
    assert (status, body["error"]) == (403, "mfa-not-enrolled")
    status, page, _ = await gateway.request("GET", "/.certgate/login", host=SECURE, user="bob",
                                            headers={"Accept": "text/html"})
    assert status == 403 and b"set up an authenticator app on your phone" in page


async def test_signing_in_again_ends_the_session_the_browser_brought(gateway: Gateway,
                                                                     alice: Alice) -> None:
    _, _, headers = await sign_in(gateway, code=alice.code())
    first = session_cookie(headers)
    alice.clock.advance(30)
    token = await login_form(gateway)
    _, _, headers = await gateway.request(
        "POST", "/.certgate/login", host=SECURE, headers={"Accept": "text/html",
                                                          "Cookie": f"{COOKIE}={first}"},
        data={"csrf": token, "next": "/", "password": PASSWORD, "code": alice.code()})
    second = session_cookie(headers)
    assert second != first
    assert (await app_get(gateway, second))[0] == 200
    assert (await app_get(gateway, first))[0] == 401
    store = await gateway.store()
    try:
        assert len(await store.list_sessions("alice")) == 1  # ended in the database too
    finally:
        await store.close()


async def test_without_the_database_sessions_work_and_sign_in_says_so(
        gateway: Gateway, alice: Alice) -> None:
    """Issue 11: during an outage what memory decides keeps working; a sign-in needs a
    write and gets a clear 503, never an open door nor a traceback."""
    _, _, headers = await sign_in(gateway, code=alice.code())
    cookie = session_cookie(headers)
    token = await login_form(gateway)
    await gateway.runtime.store.close()
    # The database is its file and its WAL and shared-memory files: all three go away
    # and come back together. Moving the main file alone left its WAL behind for the
    # empty database a connection creates in its place, and the two mixed (seen once
    # in CI under load: the sign-in after the outage was refused with a 403).
    db = gateway.data_dir / "certgate.db"
    parts = [db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm")]
    for part in parts:
        if part.exists():
            part.rename(part.with_name("away-" + part.name))
    try:
        assert (await app_get(gateway, cookie))[0] == 200  # the session, from memory
        alice.clock.advance(30)
        status, body, _ = await sign_in(gateway, code=alice.code(), csrf=token, json=True)
        assert (status, body["error"]) == (503, "sign-in-unavailable")
        status, page, _ = await gateway.request("GET", "/.certgate/login", host=SECURE,
                                                headers={"Accept": "text/html"})
        assert status == 503 and b"already signed in to keep working" in page
        assert b"Traceback" not in page
    finally:
        for part in parts:  # what the outage created in their place goes
            part.unlink(missing_ok=True)
            if (away := part.with_name("away-" + part.name)).exists():
                away.rename(part)
    status, _, _ = await sign_in(gateway, code=alice.code(), csrf=token)
    assert status == 303  # back: signing in works again
