"""Self-service enrollment end to end over real TLS: a "pending" user signs in with the
password, scans (here: reads) the secret, confirms a first code, gets recovery codes
and a session; the page then stays closed until an admin reset; every refusal."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.auth.csrf import csrf_token
from gateway.auth.enroll import enroll_binding
from gateway.auth.sessions import COOKIE
from gateway.auth.totp import code_at_step, time_step
from gateway.identity.index import Identity
from gateway.manage import factors, users
from pki.keys import fingerprint_sha256
from tests.gateway.auth.conftest import PASSWORD, Clock
from tests.gateway.auth.test_login import app_get, csrf_of, session_cookie
from tests.gateway.conftest import Gateway, craft_cert, register, write_pair

SECURE = "secure.test"
USER = "dave"


@dataclass
class Pending:
    """dave: staff, a password, an authenticator left to him; the clock pinned."""

    clock: Clock

    def code(self, secret: str, offset: int = 0) -> str:
        return code_at_step(secret, time_step(self.clock.now) + offset)


@pytest.fixture
async def pending(gateway: Gateway) -> Pending:
    store = await gateway.store()
    try:
        await users.set_password(store, USER, PASSWORD)
        await factors.mark_totp_pending(store, gateway.runtime.state.config, USER)
    finally:
        await store.close()
    clock = Clock(datetime.now(UTC).replace(second=5, microsecond=0))
    gateway.runtime.clock = clock
    return Pending(clock)


def field(html: bytes, name: str) -> str:
    match = re.search(rb'name="' + name.encode() + rb'" value="([^"]*)"', html)
    assert match, html[:600]
    return match.group(1).decode()


def secret_of(html: bytes) -> str:
    match = re.search(rb'<code class="secret">([A-Z2-7 ]+)</code>', html)
    assert match, html[:600]
    return match.group(1).decode().replace(" ", "")


async def get(gw: Gateway, path: str, *, user: str = USER, json: bool = False,
              cookie: str | None = None, **kwargs: Any) -> tuple[int, Any, Any]:
    headers = {"Accept": "application/json" if json else "text/html"}
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    return await gw.request("GET", path, host=SECURE, user=user, headers=headers, **kwargs)


async def post(gw: Gateway, data: dict[str, str], *, user: str = USER, json: bool = False,
               path: str = "/.certgate/enroll", **kwargs: Any) -> tuple[int, Any, Any]:
    headers = {"Accept": "application/json" if json else "text/html"}
    return await gw.request("POST", path, host=SECURE, user=user, headers=headers, data=data,
                            **kwargs)


async def password_form(gw: Gateway, *, user: str = USER, next_: str = "/",
                        **kwargs: Any) -> bytes:
    status, page, _ = await get(gw, f"/.certgate/login?next={next_}", user=user, **kwargs)
    assert status == 200 and isinstance(page, bytes)
    return bytes(page)


async def enrollment_page(gw: Gateway, *, next_: str = "/", **kwargs: Any) -> bytes:
    csrf = csrf_of(await password_form(gw, next_=next_, **kwargs))
    status, page, headers = await post(gw, {"csrf": csrf, "next": next_, "password": PASSWORD},
                                       **kwargs)
    assert status == 200, page
    assert headers["Cache-Control"] == "no-store"
    return bytes(page)


async def confirm(gw: Gateway, page: bytes, code: str, **kwargs: Any) -> tuple[int, Any, Any]:
    return await post(gw, {"csrf": field(page, "csrf"), "token": field(page, "token"),
                           "next": field(page, "next"), "code": code}, **kwargs)


async def failure_count(gw: Gateway) -> int:
    store = await gw.store()
    try:
        found = await store.failures([f"user:{USER}"])
    finally:
        await store.close()
    return found[f"user:{USER}"].count if found else 0


async def test_pending_user_enrolls_and_lands_in_the_app(
        gateway: Gateway, pending: Pending, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    status, _, headers = await get(gateway, "/reports?y=2026")
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/reports%3Fy%3D2026")
    form = await password_form(gateway, next_="/reports%3Fy%3D2026")
    assert b'action="/.certgate/enroll"' in form and b'name="code"' not in form
    assert b"set up" in form and b"Password" in form

    page = await enrollment_page(gateway, next_="/reports?y=2026")
    secret = secret_of(page)
    assert len(secret) == 32 and b"<svg" in page and b"<script" not in page
    assert re.search(rb'<code class="secret">(?:[A-Z2-7]{4} ){7}[A-Z2-7]{4}</code>', page)
    assert b"Google Authenticator" in page and b"certgate (dave" in page

    status, done, headers = await confirm(gateway, page, pending.code(secret))
    assert status == 200 and headers["Cache-Control"] == "no-store"
    codes = re.findall(rb"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", done)
    assert len(set(codes)) == 10
    assert b'href="/reports?y=2026"' in done and b"Continue to secure.test" in done
    cookie = session_cookie(headers)
    status, body, _ = await app_get(gateway, cookie, user=USER, path="/reports")
    assert status == 200 and body["headers"]["X-Certgate-Factors"] == "mtls,pwd,otp"

    # Confirmed: the page is closed, to GET and to POST, and says whom to call.
    status, closed, _ = await get(gateway, "/.certgate/enroll")
    assert status == 403 and b"already set up" in closed and b"lost your phone" in closed
    assert secret.encode() not in closed
    csrf = csrf_of(await password_form(gateway))
    status, body, _ = await post(gateway, {"csrf": csrf, "password": PASSWORD}, json=True)
    assert (status, body["error"]) == (403, "enroll-closed")
    status, body, _ = await confirm(gateway, page, pending.code(secret, +1), json=True)
    assert (status, body["error"]) == (403, "enroll-closed")
    form = await password_form(gateway)
    assert b'name="code"' in form and b'action="/.certgate/login"' in form

    # The secret went nowhere but the page: not in logs, not in the audit log.
    await gateway.runtime.audit.flush()
    assert secret not in caplog.text and PASSWORD not in caplog.text
    for path in Path(gateway.data_dir).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


async def test_a_recovery_code_from_the_page_works_once(gateway: Gateway,
                                                        pending: Pending) -> None:
    page = await enrollment_page(gateway)
    _, done, _ = await confirm(gateway, page, pending.code(secret_of(page)))
    code = re.findall(rb"<li><code>([a-z0-9-]{11})</code></li>", done)[6].decode()
    pending.clock.advance(60)
    csrf = csrf_of(await password_form(gateway))
    data = {"csrf": csrf, "next": "/", "password": PASSWORD, "code": code}
    status, _, headers = await post(gateway, data, path="/.certgate/login")
    assert status == 303
    status, body, _ = await app_get(gateway, session_cookie(headers), user=USER)
    assert status == 200 and body["headers"]["X-Certgate-Factors"] == "mtls,pwd,recovery"
    status, body, _ = await post(gateway, data, path="/.certgate/login", json=True)
    assert (status, body["error"]) == (401, "login-failed")


async def test_a_wrong_code_is_refused_counted_and_locks(gateway: Gateway,
                                                         pending: Pending) -> None:
    page = await enrollment_page(gateway)
    secret = secret_of(page)
    wrong = f"{(int(pending.code(secret)) + 1) % 10**6:06d}"
    status, again, headers = await confirm(gateway, page, wrong)
    assert status == 401 and "Set-Cookie" not in headers
    assert b"That code is not right" in again and b"<svg" in again
    assert secret_of(again) == secret and await failure_count(gateway) == 1
    for _ in range(3):
        assert (await confirm(gateway, again, wrong))[0] == 401
    status, locked, _ = await confirm(gateway, again, wrong)
    assert status == 429 and b"Sign-in is locked until" in locked and b"<svg" not in locked
    # Locked: the right code is refused too, and so is the password step.
    status, body, _ = await confirm(gateway, again, pending.code(secret), json=True)
    assert (status, body["error"]) == (429, "locked-out")
    status, form, _ = await get(gateway, "/.certgate/login")
    assert b"Sign-in is locked until" in form and b"your administrator" in form


async def test_a_wrong_password_is_refused_without_the_page(gateway: Gateway,
                                                            pending: Pending) -> None:
    csrf = csrf_of(await password_form(gateway))
    status, page, headers = await post(gateway, {"csrf": csrf, "password": "not it at all"})
    assert status == 401 and "Set-Cookie" not in headers
    assert b"The password is not right" in page and b"<svg" not in page
    assert b'class="secret"' not in page and await failure_count(gateway) == 1
    # The sign-in form posted with a code by a pending user: no session, nothing counted.
    status, body, headers = await post(gateway, {"csrf": csrf, "password": PASSWORD,
                                                 "code": "123456"},
                                       path="/.certgate/login", json=True)
    assert (status, body["error"]) == (409, "enroll-page") and "Set-Cookie" not in headers
    assert await failure_count(gateway) == 1


@pytest.mark.parametrize("case", [
    "no-token-no-password", "garbage-token", "foreign-user-token", "old-token",
    "no-csrf", "foreign-csrf", "token-from-before-a-reset"])
async def test_forged_or_stale_forms_are_refused(gateway: Gateway, pending: Pending,
                                                 case: str) -> None:
    page = await enrollment_page(gateway)
    secret = secret_of(page)
    box = gateway.runtime.secret_box()
    assert box is not None
    data = {"csrf": field(page, "csrf"), "token": field(page, "token"), "next": "/"}
    expected = (403, "enroll-expired")
    if case == "no-token-no-password":
        data["token"] = ""
        expected = (401, "login-failed")
    elif case == "garbage-token":
        data["token"] = "zz.<script>" + "A" * 300
    elif case == "foreign-user-token":
        store = await gateway.store()
        try:
            totp = await store.get_totp(USER)
        finally:
            await store.close()
        assert totp is not None
        other = Identity("carol", frozenset(), 1, "c" * 64, pending.clock.now,
                         pending.clock.now, None)
        data["token"] = csrf_token(box.derived_key("enroll"), enroll_binding(other, totp),
                                   pending.clock.now)
    elif case == "old-token":
        pending.clock.advance(11 * 60)
        data["csrf"] = csrf_of(await password_form(gateway))
    elif case == "no-csrf":
        data["csrf"] = ""
        expected = (403, "csrf-invalid")
    elif case == "foreign-csrf":
        data["csrf"] = csrf_token(box.derived_key("csrf"), "b" * 64, pending.clock.now)
        expected = (403, "csrf-invalid")
    elif case == "token-from-before-a-reset":
        store = await gateway.store()
        try:
            await factors.mark_totp_pending(store, gateway.runtime.state.config, USER)
        finally:
            await store.close()
    data["code"] = pending.code(secret)
    status, body, headers = await post(gateway, data, json=True)
    assert (status, body["error"]) == expected and "Set-Cookie" not in headers
    status, page, _ = await post(gateway, data)
    assert status == expected[0] and b"Traceback" not in page and b"<svg" not in page
    assert b'action="/.certgate/enroll"' in page  # the password form: a way on


async def test_a_token_from_another_certificate_is_refused(gateway: Gateway, pending: Pending,
                                                           tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cert, key = craft_cert(gateway.ca(), USER, not_before=now - timedelta(minutes=5),
                           not_after=now + timedelta(days=1))
    await register(gateway, cert, USER)
    second = write_pair(cert, key, tmp_path / "dave2")
    page = await enrollment_page(gateway)
    code = pending.code(secret_of(page))

    async def arrived() -> bool:
        return isinstance(gateway.runtime.index.resolve(fingerprint_sha256(cert), now),
                          Identity)

    await gateway.wait_for(arrived)
    # The CSRF token of the second certificate is its own; the enrollment token is not.
    csrf = csrf_of(await password_form(gateway, files=second))
    status, body, _ = await post(gateway, {"csrf": csrf, "token": field(page, "token"),
                                           "code": code}, json=True, files=second)
    assert (status, body["error"]) == (403, "enroll-expired")
    assert (await confirm(gateway, page, code))[0] == 200  # the first certificate: fine


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "' or 1=1 --",
                                  "%00%00", "0" * 7])
async def test_hostile_codes_get_a_clear_page(gateway: Gateway, pending: Pending,
                                              code: str) -> None:
    page = await enrollment_page(gateway)
    status, again, _ = await confirm(gateway, page, code)
    assert status == 401 and b"That code is not right" in again and b"Traceback" not in again


async def test_odd_requests_get_a_clear_answer(gateway: Gateway, pending: Pending) -> None:
    status, _, headers = await get(gateway, "/.certgate/enroll?next=//evil.example/")
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/")
    status, body, _ = await gateway.request("PUT", "/.certgate/enroll", host=SECURE, user=USER)
    assert (status, body["error"]) == (405, "method-not-allowed")
    status, body, _ = await post(gateway, {"password": "x" * 10_000}, json=True)
    assert (status, body["error"]) == (413, "body-too-large")
    for path in ("/.certgate/enroll", "/.certgate/login"):  # bytes that are not UTF-8
        status, page, _ = await gateway.request(
            "POST", path, host=SECURE, user=USER, data=b"csrf=%ff%fe&password=\xff",
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Accept": "text/html"})
        assert status == 400 and b"The form could not be read" in page
    for path in ("/.certgate/enroll", "/.certgate/login"):  # not the form a browser sends
        status, body, _ = await gateway.request("POST", path, host=SECURE, user=USER,
                                                data=aiohttp.FormData({"password": "x"},
                                                                      quote_fields=False,
                                                                      default_to_multipart=True))
        assert (status, body["error"]) == (400, "form-invalid")
    status, body, _ = await post(gateway, {"password": PASSWORD}, json=True, user="bob")
    assert (status, body["error"]) == (403, "mfa-not-enrolled")
    status, body, _ = await gateway.request("POST", "/.certgate/enroll", host=SECURE, user=None)
    assert status == 401 and body["error"] == "no-certificate"


async def test_admin_reset_to_pending_opens_the_page_again(gateway: Gateway,
                                                           pending: Pending) -> None:
    page = await enrollment_page(gateway)
    first = secret_of(page)
    status, _, headers = await confirm(gateway, page, pending.code(first))
    cookie = session_cookie(headers)
    assert (await app_get(gateway, cookie, user=USER))[0] == 200
    store = await gateway.store()
    try:
        await factors.mark_totp_pending(store, gateway.runtime.state.config, USER)
        assert await store.unused_recovery_codes(USER) == []
    finally:
        await store.close()

    async def ended() -> bool:
        return (await app_get(gateway, cookie, user=USER))[0] == 401

    await gateway.wait_for(ended, timeout=1.5)
    pending.clock.advance(60)
    page = await enrollment_page(gateway)
    second = secret_of(page)
    assert second != first
    status, _, _ = await confirm(gateway, page, pending.code(first))
    assert status == 401  # the old phone entry no longer fits
    status, _, headers = await confirm(gateway, page, pending.code(second))
    assert status == 200 and (await app_get(gateway, session_cookie(headers), user=USER))[0] \
        == 200
