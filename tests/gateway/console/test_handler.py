"""The admin console over real TLS: who gets in, the security headers, CSRF on every
form, hostile values shown as text, and the one-time download link's refusals."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta

import pytest

from gateway.audit.query import AuditQuery
from gateway.console.handler import GET_ROUTES, POST_ROUTES
from gateway.manage import users
from gateway.store.records import CertStatus
from tests.gateway.auth.conftest import PASSWORD, Alice, with_authenticator
from tests.gateway.conftest import Gateway
from tests.gateway.console.conftest import (
    CONSOLE,
    Admin,
    console,
    console_config,
    csrf_of,
    make_admin,
    sign_in,
)

pytestmark = console_config
HOSTILE = "<script>alert(1)</script>"


async def test_only_admins_with_a_fresh_second_factor_get_in(gateway: Gateway,
                                                             alice: Alice) -> None:
    # Not in the console group: the normal refusal page, even signed in.
    status, body, _ = await console(gateway, "GET", "/", user="bob")
    assert status == 403 and b"Access denied" in body and b"console" not in body.lower()

    # In the group, not signed in: sent to sign in, as for an app with mfa: required.
    await make_admin(gateway)
    status, _, headers = await console(gateway, "GET", "/certificates?status=active")
    assert status == 303
    assert headers["Location"] == "/.certgate/login?next=/certificates%3Fstatus%3Dactive"

    cookie = await sign_in(gateway, alice)
    status, body, _ = await console(gateway, "GET", "/", cookie=cookie)
    assert status == 200 and b"<h1>Overview</h1>" in body and b"Signed in as" in body

    # Five minutes later the second factor is too old for the console: sign in again.
    alice.clock.advance(5 * 60 + 1)
    status, _, headers = await console(gateway, "GET", "/", cookie=cookie)
    assert status == 303 and headers["Location"].startswith("/.certgate/login?next=/")


async def test_a_signed_in_non_admin_gets_the_refusal_page(gateway: Gateway,
                                                           alice: Alice) -> None:
    cookie = await sign_in(gateway, alice)  # alice, signed in, not (yet) an admin
    status, body, _ = await console(gateway, "GET", "/", cookie=cookie)
    assert status == 403 and b"Access denied" in body
    status, _, _ = await console(gateway, "POST", "/certificates/revoke", cookie=cookie,
                                 data={"serial": "01"})
    assert status == 403


async def test_security_headers_and_the_pinned_stylesheet(gateway: Gateway,
                                                          admin: Admin) -> None:
    for path in GET_ROUTES:
        if path == "/audit/report":
            continue
        status, body, headers = await console(gateway, "GET", path, cookie=admin.cookie)
        csp = headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, path
        assert "script-src" not in csp and "default-src 'none'" in csp
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
        if status == 200:
            style = re.search(rb"<style>(.*?)</style>", body, re.S)
            assert style is not None
            digest = base64.b64encode(hashlib.sha256(style.group(1)).digest()).decode()
            assert f"'sha256-{digest}'" in csp, path
            assert b"<script" not in body


@pytest.mark.parametrize("path", sorted(POST_ROUTES))
async def test_every_form_refuses_a_post_without_a_valid_token(gateway: Gateway, admin: Admin,
                                                               path: str) -> None:
    store = await gateway.store()
    try:
        cert = (await store.list_certificates(user="bob"))[0]
    finally:
        await store.close()
    serial = f"{cert.serial:X}"
    form = {"serial": serial, "user": "bob", "reason": "keyCompromise", "nonce": "n-" + path,
            "profile": "modern", "groups": "nobody", "session": "0" * 16, "email": "",
            "t": "A" * 43}
    # No token, a made-up one, and one of another session (dave's).
    other = await sign_in_other(gateway, admin.alice)
    for token in (None, "1.abc", other):
        data = dict(form) if token is None else {**form, "csrf": token}
        status, body, _ = await console(gateway, "POST", path, cookie=admin.cookie, data=data)
        assert status == 403 and b"Form expired" in body, (path, token)
    store = await gateway.store()
    try:
        after = await store.list_certificates(user="bob")
        bob = await store.get_user("bob")
        reset = await store.open_password_reset("bob", gateway.runtime.clock())
        bob_totp = await store.get_totp("bob")
    finally:
        await store.close()
    assert [(c.serial, c.status) for c in after] == [(cert.serial, CertStatus.ACTIVE)]
    assert (bob.enabled, bob.groups) == (True, ("sales",))
    assert reset is None and bob_totp is None
    assert (await console(gateway, "GET", "/", cookie=admin.cookie))[0] == 200


async def sign_in_other(gateway: Gateway, alice: Alice) -> str:
    """A console CSRF token minted for dave's console session."""
    store = await gateway.store()
    try:
        await users.set_password(store, "dave", PASSWORD)
    finally:
        await store.close()
    dave = await with_authenticator(gateway, alice, "dave")
    await make_admin(gateway, "dave")
    cookie = await sign_in(gateway, dave, "dave")
    status, body, _ = await console(gateway, "GET", "/certificates", cookie=cookie, user="dave")
    assert status == 200
    return csrf_of(body)


async def test_hostile_values_render_as_text_on_every_page(gateway: Gateway,
                                                           admin: Admin) -> None:
    # A refused request whose raw path is a script (refused as such, and recorded as
    # sent): on the overview and in the audit search.
    status, _, _ = await gateway.request("GET", "/" + HOSTILE, user="bob")
    assert status == 400

    async def recorded() -> bool:
        store = await gateway.store()
        try:
            rows = await store.search_audit(AuditQuery(user="bob", decision="deny"))
        finally:
            await store.close()
        return any("<script>" in (r["path"] or "") for r in rows)

    await gateway.wait_for(recorded, timeout=5)
    pages = [f"{path}?user={HOSTILE}&status={HOSTILE}&action={HOSTILE}&serial={HOSTILE}"
             f"&decision=deny&since=1h" for path in GET_ROUTES if path != "/audit/report"]
    seen_on = []
    for page in pages:
        status, body, _ = await console(gateway, "GET", page.replace(" ", "%20")
                                        .replace("<", "%3C").replace(">", "%3E"),
                                        cookie=admin.cookie)
        assert status in (200, 400), page
        assert b"<script>alert(1)" not in body, page
        if b"&lt;script&gt;alert(1)&lt;/script&gt;" in body:
            seen_on.append(page.split("?")[0])
    # The record's path on the overview and in the search; the typed values echoed as text.
    assert set(seen_on) == {p for p in GET_ROUTES if p != "/audit/report"}
    # The password reset's confirmation, for a hostile name: refused as text.
    status, body, _ = await console(gateway, "GET", "/users/confirm?action=password-reset"
                                    "&user=%3Cscript%3Ealert(1)%3C/script%3E",
                                    cookie=admin.cookie)
    assert status == 400 and b"<script>alert(1)" not in body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in body
    status, body, _ = await console(gateway, "GET", "/audit?user=bob&decision=deny",
                                    cookie=admin.cookie)
    assert b"/&lt;script&gt;alert(1)&lt;/script&gt;" in body
    status, body, _ = await console(gateway, "GET", "/", cookie=admin.cookie)
    assert b"/&lt;script&gt;alert(1)&lt;/script&gt;" in body


async def test_unknown_pages_and_methods(gateway: Gateway, admin: Admin) -> None:
    assert (await console(gateway, "GET", "/nope", cookie=admin.cookie))[0] == 404
    assert (await console(gateway, "GET", "/certificates/revoke", cookie=admin.cookie))[0] == 405
    # Not a form: refused before anything else.
    status, body, _ = await console(gateway, "POST", "/certificates/revoke",
                                    cookie=admin.cookie, json={"serial": "01"})
    assert status == 400 and b"Not a form" in body


async def test_download_link_refusals_say_what_happened(gateway: Gateway, admin: Admin) -> None:
    # Unknown and cut-short links, without any certificate.
    for query, words in (("?t=" + "A" * 43, b"This link is not valid"),
                         ("?t=abc", b"This link is not complete"), ("", b"not complete")):
        status, body, _ = await gateway.request("GET", "/.certgate/download" + query,
                                                user=None, host=CONSOLE,
                                                headers={"Accept": "text/html"})
        assert status == 404 and words in body, query
    # Issue for bob from the console; the link expires after 24 h.
    status, body, _ = await console(gateway, "GET", "/certificates", cookie=admin.cookie)
    nonce = re.search(rb'name="nonce" value="([^"]+)"', body)
    assert nonce is not None
    status, body, _ = await console(gateway, "POST", "/certificates/issue", cookie=admin.cookie,
                                    data={"csrf": csrf_of(body), "user": "bob",
                                          "profile": "compat", "nonce": nonce.group(1).decode()})
    assert status == 200 and b"Hand over bob" in body
    link = re.search(rb'id="link">https://[^/]+(/\.certgate/download\?t=[^<]+)<', body)
    assert link is not None
    path = link.group(1).decode()
    status, body, _ = await gateway.request("GET", path, user=None, host=CONSOLE,
                                            headers={"Accept": "text/html"})
    assert status == 200 and b"Download my certificate" in body
    admin.alice.clock.advance(timedelta(hours=24).total_seconds())
    status, body, _ = await gateway.request("GET", path, user=None, host=CONSOLE,
                                            headers={"Accept": "text/html"})
    assert status == 410 and b"This link has expired" in body
    token = path.split("t=", 1)[1]
    status, body, _ = await gateway.request("POST", "/.certgate/download", user=None,
                                            host=CONSOLE, data={"t": token},
                                            headers={"Accept": "text/html"})
    assert status == 410 and b"expired" in body
