"""Choosing a new password with the admin's set-up code, end to end over real TLS with a
real client certificate: the sign-in page shows the reset form, the right code, new
password and authenticator code start a session; wrong, used and expired codes are
refused, count towards the lockout and never say which part was wrong; a "pending"
person goes on to the enrollment page; nothing secret reaches a log or the trail."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.auth.passwords import verify_password
from gateway.manage import factors, resets
from tests.gateway.audit.test_events import records
from tests.gateway.auth.conftest import Alice
from tests.gateway.auth.test_enroll import confirm, post, secret_of
from tests.gateway.auth.test_login import app_get, csrf_of, session_cookie
from tests.gateway.conftest import Gateway

NEW = "a brand new passphrase"
SECURE = "secure.test"


async def open_reset(gw: Gateway, user: str, alice: Alice) -> str:
    store = await gw.store()
    try:
        started = await resets.start_password_reset(store, user, alice.clock.now,
                                                    created_by="root")
    finally:
        await store.close()
    return started.code


async def reset_form(gw: Gateway, user: str = "alice", next_: str = "/") -> bytes:
    status, page, _ = await gw.request("GET", f"/.certgate/login?next={next_}", host=SECURE,
                                       user=user, headers={"Accept": "text/html"})
    assert status == 200 and isinstance(page, bytes)
    return bytes(page)


async def send(gw: Gateway, form: bytes, code: str, *, user: str = "alice",
               totp: str | None = None, password: str = NEW, repeat: str | None = None,
               json: bool = False, next_: str = "/") -> tuple[int, Any, Any]:
    data = {"csrf": csrf_of(form), "next": next_, "reset_code": code, "password": password,
            "repeat": password if repeat is None else repeat}
    if totp is not None:
        data["code"] = totp
    return await post(gw, data, user=user, json=json, path="/.certgate/reset")


async def stored_hash(gw: Gateway, user: str) -> str | None:
    store = await gw.store()
    try:
        return (await store.get_user(user)).password_hash
    finally:
        await store.close()


async def test_the_code_a_new_password_and_the_phone_reach_the_app(
        gateway: Gateway, alice: Alice, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    code = await open_reset(gateway, "alice", alice)
    assert await stored_hash(gateway, "alice") is None  # the old password is gone at once
    form = await reset_form(gateway, next_="/reports%3Fy%3D2026")
    assert b"Your administrator has set a password reset" in form
    assert b'action="/.certgate/reset"' in form and b'name="reset_code"' in form
    assert b'name="repeat"' in form and b'name="code"' in form
    # The sign-in form's own POST is turned to the reset form, nothing counted.
    status, body, _ = await post(gateway, {"csrf": csrf_of(form), "password": "x" * 12,
                                           "code": alice.code()}, path="/.certgate/login",
                                 user="alice", json=True)
    assert (status, body["error"]) == (409, "reset-page")

    status, _, headers = await send(gateway, form, code.upper().replace("-", " "),
                                    totp=alice.code(), next_="/reports?y=2026")
    assert (status, headers["Location"]) == (303, "/reports?y=2026")
    status, body, _ = await app_get(gateway, session_cookie(headers), path="/reports")
    assert status == 200 and body["headers"]["X-Certgate-Factors"] == "mtls,pwd,otp"
    new_hash = await stored_hash(gateway, "alice")
    assert new_hash is not None and verify_password(new_hash, NEW)

    # Spent: the sign-in page asks for the password again, and the code is closed.
    form = await reset_form(gateway)
    assert b'action="/.certgate/login"' in form and b"reset_code" not in form
    alice.clock.advance(30)
    status, body, _ = await send(gateway, form, code, totp=alice.code(), json=True)
    assert (status, body["error"]) == (409, "reset-closed")
    [done] = [r for r in await records(gateway, "password.reset")]
    assert (done["reason"], done["user"], done["factors"]) == ("reset-completed", "alice",
                                                               "cert,totp")
    assert code not in caplog.text and NEW not in caplog.text
    for path in Path(gateway.data_dir).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert code.encode() not in content and NEW.encode() not in content, path


async def test_wrong_codes_are_refused_alike_and_lock(gateway: Gateway, alice: Alice) -> None:
    code = await open_reset(gateway, "alice", alice)
    form = await reset_form(gateway)
    wrong_totp = f"{(int(alice.code()) + 1) % 10**6:06d}"
    wrong_code = "2222-2222-2222-2222"
    answers = []
    for reset_code, totp in ((wrong_code, alice.code()), (code, wrong_totp),
                             ("not a code", alice.code())):
        status, page, headers = await send(gateway, form, reset_code, totp=totp)
        assert status == 401 and "Set-Cookie" not in headers
        answers.append(page.split(b'class="error"', 1)[1].split(b"</p>", 1)[0])
    assert len(set(answers)) == 1 and b"set-up code or the code" in answers[0]
    assert await failure_count_of(gateway, "alice") == 3
    assert await stored_hash(gateway, "alice") is None
    failed = await records(gateway, "password.reset")
    assert [r["reason"] for r in failed] == ["reset-failed"] * 3
    await send(gateway, form, wrong_code, totp=alice.code())
    status, locked, _ = await send(gateway, form, wrong_code, totp=alice.code())
    assert status == 429 and b"Sign-in is locked until" in locked
    # Locked: the right code and phone code are refused too.
    status, body, _ = await send(gateway, form, code, totp=alice.code(), json=True)
    assert (status, body["error"]) == (429, "locked-out")


async def failure_count_of(gw: Gateway, user: str) -> int:
    store = await gw.store()
    try:
        found = await store.failures([f"user:{user}"])
    finally:
        await store.close()
    return found[f"user:{user}"].count if found else 0


@pytest.mark.parametrize(("password", "repeat", "words"), [
    ("short", "short", b"at least 12 characters"),
    (NEW, NEW + "x", b"are not the same"),
    (" " + NEW, " " + NEW, b"must not start or end with spaces"),
])
async def test_a_weak_or_mistyped_password_is_refused_in_words_and_not_counted(
        gateway: Gateway, alice: Alice, password: str, repeat: str, words: bytes) -> None:
    code = await open_reset(gateway, "alice", alice)
    form = await reset_form(gateway)
    status, page, _ = await send(gateway, form, code, totp=alice.code(), password=password,
                                 repeat=repeat)
    assert status == 400 and words in page and b"Traceback" not in page
    assert await failure_count_of(gateway, "alice") == 0


async def test_an_expired_code_is_refused(gateway: Gateway, alice: Alice) -> None:
    code = await open_reset(gateway, "alice", alice)
    assert b'name="reset_code"' in await reset_form(gateway)
    alice.clock.advance(timedelta(hours=24).total_seconds())
    form = await reset_form(gateway)  # a fresh form token; an expired reset shows no form
    assert b'name="reset_code"' not in form
    status, page, _ = await send(gateway, form, code, totp=alice.code())
    assert status == 409 and b"used already or has expired" in page
    assert await stored_hash(gateway, "alice") is None


async def test_without_the_csrf_token_nothing_is_checked(gateway: Gateway,
                                                         alice: Alice) -> None:
    code = await open_reset(gateway, "alice", alice)
    status, body, _ = await post(gateway, {"reset_code": code, "password": NEW, "repeat": NEW,
                                           "code": alice.code()}, path="/.certgate/reset",
                                 user="alice", json=True)
    assert (status, body["error"]) == (403, "csrf-invalid")
    assert await stored_hash(gateway, "alice") is None


async def test_a_pending_person_goes_on_to_the_enrollment_page(gateway: Gateway,
                                                                alice: Alice) -> None:
    store = await gateway.store()
    try:
        await factors.mark_totp_pending(store, gateway.runtime.state.config, "carol")
    finally:
        await store.close()
    code = await open_reset(gateway, "carol", alice)
    form = await reset_form(gateway, user="carol")
    assert b'name="reset_code"' in form and b'name="code"' not in form
    status, page, headers = await send(gateway, form, code, user="carol")
    assert status == 200 and headers["Cache-Control"] == "no-store" and b"<svg" in page
    secret = secret_of(page)
    new_hash = await stored_hash(gateway, "carol")
    assert new_hash is not None and verify_password(new_hash, NEW)
    status, done, headers = await confirm(gateway, page, alice_code(alice, secret),
                                          user="carol")
    assert status == 200 and "Set-Cookie" in headers
    assert len(done.split(b"<li><code>")) == 11


def alice_code(alice: Alice, secret: str) -> str:
    from gateway.auth.totp import code_at_step, time_step

    return code_at_step(secret, time_step(alice.clock.now))
