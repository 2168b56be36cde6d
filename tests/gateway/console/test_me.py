""""My access" end to end over real TLS: a client certificate and a session from a real
password + TOTP sign-in; the page lists exactly the person's own certificates, sessions
and audit records, suspends a certificate (the next request with it is denied), ends
sessions, refuses posts without a valid CSRF token and renders hostile text as text."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.auth.sessions import COOKIE
from gateway.manage import factors
from gateway.store.db import serial_hex
from gateway.store.records import CertStatus, SessionRecord
from tests.gateway.auth.conftest import Alice
from tests.gateway.auth.test_login import csrf_of, session_cookie, sign_in
from tests.gateway.conftest import Gateway, cli

ME = "/.certgate/me"
SECURE = "secure.test"


async def signed_in(gw: Gateway, alice: Alice) -> str:
    """A fresh session of alice (password + a code of a new time step): its cookie."""
    alice.clock.advance(30)
    status, _, headers = await sign_in(gw, code=alice.code())
    assert status == 303
    return session_cookie(headers)


async def me(gw: Gateway, cookie: str | None, path: str = ME, *, method: str = "GET",
             user: str = "alice", data: dict[str, str] | None = None,
             json: bool = False) -> tuple[int, Any, Any]:
    headers = {"Accept": "application/json" if json else "text/html"}
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    return await gw.request(method, path, host=SECURE, user=user, headers=headers, data=data)


async def serials(gw: Gateway, user: str) -> list[int]:
    store = await gw.store()
    try:
        return [c.serial for c in await store.list_certificates(user=user)]
    finally:
        await store.close()


async def status_of(gw: Gateway, serial: int) -> CertStatus:
    store = await gw.store()
    try:
        return (await store.get_certificate(serial)).status
    finally:
        await store.close()


async def records(gw: Gateway, user: str) -> list[dict[str, Any]]:
    store = await gw.store()
    try:
        return await store.recent_audit(user, limit=500)
    finally:
        await store.close()


async def audit_events(gw: Gateway, type_: str) -> list[dict[str, Any]]:
    """Records of ``type_`` in the JSON-lines copy of the audit trail."""
    path = gw.data_dir / "audit" / "audit.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [r for r in rows if r["type"] == type_]


async def test_without_a_fresh_sign_in_people_are_sent_to_sign_in(gateway: Gateway,
                                                                     alice: Alice) -> None:
    status, _, headers = await me(gateway, None)
    assert (status, headers["Location"]) == (303, "/.certgate/login?next=/.certgate/me")
    status, body, _ = await me(gateway, None, json=True)
    assert (status, body["error"], body["login"]) == (401, "mfa-required",
                                                      "/.certgate/login?next=/.certgate/me")
    # A cookie of another certificate's session is no session here.
    cookie = await signed_in(gateway, alice)
    status, _, _ = await me(gateway, cookie, user="carol")
    assert status == 303
    # A sign-in older than FRESH: sign in again (a step-up).
    alice.clock.advance(31 * 60)
    status, _, headers = await me(gateway, cookie, json=True)
    assert (status, headers.get("Location")) == (401, None)
    # Without a certificate the page is not there at all.
    status, _, _ = await me(gateway, None, user=None)
    assert status == 401


async def test_the_page_lists_only_my_certificates_sessions_and_records(
        gateway: Gateway, alice: Alice) -> None:
    cookie = await signed_in(gateway, alice)
    # Somebody else's traces: bob's certificate and refused request, carol's session.
    bob_serial = (await serials(gateway, "bob"))[0]
    status, _, _ = await gateway.request("GET", "/bob-was-here", user="bob")
    assert status == 403
    store = await gateway.store()
    try:
        carol_fp = (await store.list_certificates(user="carol"))[0].fingerprint
        now = alice.clock.now
        await store.create_session(SessionRecord("c" * 64, "carol", carol_fp, now, now, now,
                                                 ("mtls", "pwd", "otp"), host="carols.test"))
    finally:
        await store.close()
    # Alice's own trail, with an address that is hostile HTML.
    status, _, _ = await gateway.request("GET", "/alice-was-here")
    assert status == 200
    status, _, _ = await gateway.request("GET", "/x/<script>alert(1)</script>")
    assert status == 400  # refused as it stands, and recorded as it came

    async def trail_written() -> bool:
        return {"/alice-was-here", "/x/<script>alert(1)</script>"} <= {
            r["path"] for r in await records(gateway, "alice")}
    await gateway.wait_for(trail_written, timeout=5)

    status, page, headers = await me(gateway, cookie)
    assert status == 200, page[:400]
    html = page.decode()
    mine = (await serials(gateway, "alice"))[0]
    assert f"Certificate …{serial_hex(mine)[-8:]}" in html
    assert serial_hex(bob_serial)[-8:] not in html
    assert html.count('class="item current"') == 2  # the certificate and the session in use
    assert "in this browser" in html and "this browser" in html
    assert "secure.test" in html and "carols.test" not in html
    assert "alice-was-here" in html and "bob-was-here" not in html
    assert "<script>" not in html
    assert "/x/&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Headers: no inline anything but the one style block, by its hash.
    csp = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style and f"'sha256-{_sha256(style.group(1))}'" in csp
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert headers["Cache-Control"] == "no-store"
    # No renewal notice for a certificate with most of a year to go.
    assert "Renew before" not in html


async def test_renew_notice_from_thirty_days_before_expiry(gateway: Gateway,
                                                            alice: Alice) -> None:
    store = await gateway.store()
    try:
        cert = (await store.list_certificates(user="alice"))[0]
    finally:
        await store.close()
    alice.clock.now = cert.not_after - timedelta(days=12, hours=1)
    cookie = await signed_in(gateway, alice)
    status, page, _ = await me(gateway, cookie)
    assert status == 200
    text = page.decode()
    day = cert.not_after.strftime("%d %b %Y")
    assert f"Renew before {day}." in text and "(in 12 days)" in text
    assert "for a new certificate" in text


async def test_suspending_a_certificate_i_no_longer_hold(gateway: Gateway, alice: Alice,
                                                         tmp_path: Path) -> None:
    # A second certificate of alice's, say on a USB stick she lost.
    p12 = tmp_path / "alice-stick.p12"
    await asyncio.to_thread(cli, "--config", str(gateway.config_path), "cert", "issue",
                            "alice", "--out", str(p12), "--p12-password-file",
                            str(tmp_path / "p12pw"))
    _, stick = await serials(gateway, "alice")
    bob_serial = (await serials(gateway, "bob"))[0]
    cookie = await signed_in(gateway, alice)

    status, page, _ = await me(gateway, cookie, f"{ME}?suspend={stick:x}")
    assert status == 200 and b"Yes, suspend it" in page
    assert b"This is the certificate in this browser" not in page
    token = csrf_of(page)

    # Without a valid token nothing changes.
    for bad in ("", token[:-2] + "00"):
        status, page, _ = await me(gateway, cookie, method="POST", data={
            "csrf": bad, "action": "suspend", "serial": f"{stick:x}"})
        assert status == 403 and b"Nothing was changed" in page
    assert await status_of(gateway, stick) is CertStatus.ACTIVE
    # Somebody else's certificate: refused, as if it did not exist.
    status, page, _ = await me(gateway, cookie, method="POST", data={
        "csrf": token, "action": "suspend", "serial": f"{bob_serial:x}"})
    assert status == 409 and b"you have no certificate with serial" in page
    assert await status_of(gateway, bob_serial) is CertStatus.ACTIVE

    status, _, headers = await me(gateway, cookie, method="POST", data={
        "csrf": token, "action": "suspend", "serial": f"{stick:x}"})
    assert (status, headers["Location"]) == (303, f"{ME}?done=suspended")
    assert await status_of(gateway, stick) is CertStatus.SUSPENDED
    status, page, _ = await me(gateway, cookie, f"{ME}?done=suspended")
    assert status == 200 and b"The certificate is suspended." in page
    assert b"Suspended</span>" in page
    # The one in use still works; the CRL lists the suspended one.
    status, _, _ = await gateway.request("GET", "/still-fine")
    assert status == 200
    store = await gateway.store()
    try:
        assert stick in {c.serial for c in await store.revoked_certificates()}
    finally:
        await store.close()

    async def recorded() -> bool:
        return any(r["detail"] and serial_hex(stick) in r["detail"]
                   for r in await audit_events(gateway, "cert.suspend"))
    await gateway.wait_for(recorded, timeout=5)
    event = next(r for r in await audit_events(gateway, "cert.suspend"))
    assert (event["actor"], event["user"]) == ("alice", "alice")


async def test_suspending_the_certificate_in_use_locks_this_browser_out(
        gateway: Gateway, alice: Alice) -> None:
    serial = (await serials(gateway, "alice"))[0]
    cookie = await signed_in(gateway, alice)
    status, page, _ = await me(gateway, cookie, f"{ME}?suspend={serial:x}")
    assert status == 200 and b"This is the certificate in this browser" in page
    status, page, _ = await me(gateway, cookie, method="POST", data={
        "csrf": csrf_of(page), "action": "suspend", "serial": f"{serial:x}"})
    assert status == 200 and b"Certificate suspended" in page

    async def denied() -> bool:
        status, body, _ = await gateway.request("GET", "/anything")
        return status == 403 and body["error"] == "certificate-suspended"
    await gateway.wait_for(denied, timeout=2)
    status, _, _ = await me(gateway, cookie)
    assert status == 403


async def test_ending_sessions(gateway: Gateway, alice: Alice) -> None:
    other = await signed_in(gateway, alice)  # say, the browser at the office
    third = await signed_in(gateway, alice)
    cookie = await signed_in(gateway, alice)
    store = await gateway.store()
    try:
        sessions = {s.id_hash[:16]: s for s in await factors.list_sessions(store, "alice")}
    finally:
        await store.close()
    assert len(sessions) == 3
    status, page, _ = await me(gateway, cookie)
    token = csrf_of(page)
    assert page.decode().count("End this session") == 3
    # A session id that is not hers (nor anyone's): refused.
    status, page, _ = await me(gateway, cookie, method="POST", data={
        "csrf": token, "action": "end", "session": "0" * 16})
    assert status == 409 and b"not yours" in page

    oldest = min(sessions.values(), key=lambda s: s.created_at)
    status, _, headers = await me(gateway, cookie, method="POST", data={
        "csrf": token, "action": "end", "session": oldest.short_id})
    assert (status, headers["Location"]) == (303, f"{ME}?done=ended")
    assert (await me(gateway, other, json=True))[0] == 401  # the office browser: signed out
    assert (await me(gateway, third))[0] == 200

    status, _, headers = await me(gateway, cookie, method="POST", data={
        "csrf": token, "action": "end-others"})
    assert (status, headers["Location"]) == (303, f"{ME}?done=ended-others")
    assert (await me(gateway, third, json=True))[0] == 401
    status, page, _ = await me(gateway, cookie, f"{ME}?done=ended-others")
    assert status == 200 and page.decode().count("End this session") == 1

    # Ending this one signs this browser out.
    current = max(sessions.values(), key=lambda s: s.created_at).short_id
    status, page, headers = await me(gateway, cookie, method="POST", data={
        "csrf": token, "action": "end", "session": current})
    assert status == 200 and b"Session ended" in page
    assert f"{COOKIE}=\"\"" in headers["Set-Cookie"] or f"{COOKIE}=;" in headers["Set-Cookie"]
    assert (await me(gateway, cookie, json=True))[0] == 401

    async def recorded() -> bool:
        return len(await audit_events(gateway, "session.end")) == 3
    await gateway.wait_for(recorded, timeout=5)
    assert {r["actor"] for r in await audit_events(gateway, "session.end")} == {"alice"}


async def test_a_token_of_another_session_is_refused(gateway: Gateway, alice: Alice) -> None:
    first = await signed_in(gateway, alice)
    second = await signed_in(gateway, alice)
    _, page, _ = await me(gateway, first)
    status, page, _ = await me(gateway, second, method="POST", data={
        "csrf": csrf_of(page), "action": "end-others"})
    assert status == 403 and b"Nothing was changed" in page
    assert (await me(gateway, first))[0] == 200


async def test_signed_in_on_another_app_host_fetches_that_sign_in(gateway: Gateway,
                                                                   alice: Alice) -> None:
    await signed_in(gateway, alice)  # on secure.test
    status, _, headers = await gateway.request("GET", ME, host="wiki.test",
                                               headers={"Accept": "text/html"})
    assert status == 303
    assert "/.certgate/handoff?to=wiki.test&next=/.certgate/me" in headers["Location"]
    assert headers["Location"].startswith("https://secure.test")


async def test_hostile_input_gets_a_clear_refusal(gateway: Gateway, alice: Alice) -> None:
    cookie = await signed_in(gateway, alice)
    status, page, _ = await me(gateway, cookie, f"{ME}?suspend=%3Cscript%3E")
    assert status == 404 and b"not an active certificate of yours" in page
    assert b"<script>" not in page
    _, page, _ = await me(gateway, cookie)
    token = csrf_of(page)
    cases: list[tuple[dict[str, str], int, bytes]] = [
        ({"action": "suspend", "serial": "zz<b>"}, 409, b"not a certificate serial number"),
        ({"action": "suspend", "serial": "f" * 41}, 409, b"not a certificate serial number"),
        ({"action": "end", "session": "<script>"}, 409, b"not yours"),
        ({"action": "drop-tables"}, 400, b"could not be read"),
    ]
    for data, expected, words in cases:
        status, page, _ = await me(gateway, cookie, method="POST",
                                   data={"csrf": token, **data})
        assert (status, words in page, b"<script>" in page) == (expected, True, False), data
    status, _, _ = await gateway.request("POST", ME, host=SECURE, json={"action": "end"},
                                         headers={"Cookie": f"{COOKIE}={cookie}"})
    assert status == 400
    status, _, _ = await me(gateway, cookie, method="PUT")
    assert status == 405
    assert (await me(gateway, cookie))[0] == 200  # nothing half-done: the page still works


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
