"""The gateway's own pages, served by a real aiohttp server: HTML for browsers, JSON
for API clients, the reference id, escaping of hostile text, security headers."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.http import pages
from gateway.http.security import CONSOLE_CSS, PAGES_CSS
from gateway.identity.index import Identity
from policies.model import Reason, describe

HOSTILE = '<script>alert("x")</script>&<img src=x onerror=1>'
IDENTITY = Identity(user=HOSTILE, groups=frozenset({"staff", "<b>admins</b>"}), serial=0xABC123,
                    fingerprint="ab" * 32, not_before=datetime(2026, 1, 1, tzinfo=UTC),
                    not_after=datetime(2027, 3, 4, 5, 6, tzinfo=UTC), email="a@x.test")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": f"default-src 'none'; style-src {PAGES_CSS.source} "
                               f"{CONSOLE_CSS.source}; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Strict-Transport-Security": "max-age=31536000",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def pages_app() -> web.Application:
    async def refuse(request: web.Request) -> web.Response:
        limit = request.query.get("limit")
        return pages.refusal(request, status=int(request.match_info["status"]),
                             reason=Reason(request.match_info["reason"]),
                             reference=request.query.get("ref", "0123456789ab"),
                             limit=int(limit) if limit else None)

    async def wants(request: web.Request) -> web.Response:
        return web.json_response(pages.wants_json(request))

    async def whoami(request: web.Request) -> web.Response:
        return pages.whoami(request, IDENTITY)

    async def help_(request: web.Request) -> web.Response:
        return pages.help_page(request)

    app = web.Application()
    app.router.add_get("/refuse/{status}/{reason}", refuse)
    app.router.add_get("/wants", wants)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/help", help_)
    return app


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(pages_app(), host="127.0.0.1", port=0)) as c:
        yield c


@pytest.mark.parametrize(("accept", "json_"), [
    ("", False),
    ("*/*", False),
    ("text/html", False),
    ("application/json", True),
    ("application/json, text/plain", True),
    ("application/json, text/html", True),    # whichever comes first wins
    ("text/html, application/json", False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),  # a browser
])
async def test_wants_json_by_accept(client: TestClient[web.Request, web.Application],
                                    accept: str, json_: bool) -> None:
    resp = await client.get("/wants", headers={"Accept": accept})
    assert await resp.json() is json_


@pytest.mark.parametrize(("status", "reason"), [
    (403, Reason.CERTIFICATE_REVOKED), (401, Reason.NO_CERTIFICATE),
    (502, Reason.UPSTREAM_UNAVAILABLE),
])
async def test_json_refusal(client: TestClient[web.Request, web.Application], status: int,
                            reason: Reason) -> None:
    resp = await client.get(f"/refuse/{status}/{reason.value}?ref=5e1ec7ed0042",
                            headers={"Accept": "application/json"})
    assert resp.status == status
    assert resp.content_type == "application/json"
    assert await resp.json() == {"error": reason.value, "message": describe(reason),
                                 "reference": "5e1ec7ed0042", "status": status}
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value, name


async def test_json_body_too_large_names_the_limit(
        client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get(f"/refuse/413/{Reason.BODY_TOO_LARGE.value}?limit={2**20}",
                            headers={"Accept": "application/json"})
    data = await resp.json()
    assert resp.status == 413
    assert data["limit_bytes"] == 2**20
    assert data["message"] == ("The upload is larger than the gateway accepts for this "
                               "application (1 MiB).")


async def test_html_refusal(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get(f"/refuse/403/{Reason.CERTIFICATE_SUSPENDED.value}?ref=00000000beef",
                            headers={"Accept": "text/html"})
    text = await resp.text()
    assert resp.status == 403
    assert resp.content_type == "text/html" and resp.charset == "utf-8"
    assert "<title>Access denied · certgate</title>" in text
    assert html.escape(describe(Reason.CERTIFICATE_SUSPENDED), quote=False) in text
    assert "ask your administrator to resume the certificate" in text
    assert "<code>00000000beef</code>" in text
    assert "/.certgate/help" not in text  # the import help is for certificate problems only
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value, name


async def test_html_upload_limit_and_help_link(
        client: TestClient[web.Request, web.Application]) -> None:
    too_large = await client.get(f"/refuse/413/{Reason.BODY_TOO_LARGE.value}?limit={3 * 2**30}")
    assert "Upload too large" in await too_large.text()
    assert "(3 GiB)" in await too_large.text()
    odd = await client.get(f"/refuse/413/{Reason.BODY_TOO_LARGE.value}?limit=1500")
    assert "(1500 bytes)" in await odd.text()
    no_cert = await client.get(f"/refuse/401/{Reason.NO_CERTIFICATE.value}")
    assert '<a href="/.certgate/help">' in await no_cert.text()
    assert "Certificate needed" in await no_cert.text()


async def test_help_page_covers_linux_chrome_and_links_to_the_app(
        client: TestClient[web.Request, web.Application]) -> None:
    text = await (await client.get("/help")).text()
    assert "Chrome or Edge on Linux" in text and "chrome://certificate-manager" in text
    assert '<a href="/">this application</a>' in text  # not "this address": it is the help
    assert "root certificate" in text


async def test_unknown_status_gets_a_generic_title(
        client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get(f"/refuse/429/{Reason.DENIED_BY_RULE.value}")
    assert resp.status == 429
    assert "<h1>Refused</h1>" in await resp.text()


async def test_whoami_html_escapes_hostile_text(
        client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/whoami", headers={"Accept": "text/html"})
    text = await resp.text()
    assert resp.status == 200
    assert "<script" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&lt;img src=x onerror=1&gt;" \
        in text
    assert "Groups: &lt;b&gt;admins&lt;/b&gt;, staff" in text
    assert f"Certificate <code>{IDENTITY.serial_hex}</code>, valid until 2027-03-04." in text
    assert '<a href="/">Back to the application</a>' in text
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value, name


async def test_whoami_json_carries_the_raw_values(
        client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/whoami", headers={"Accept": "application/json"})
    assert await resp.json() == {
        "user": HOSTILE, "groups": ["<b>admins</b>", "staff"], "serial": IDENTITY.serial_hex,
        "not_after": "2027-03-04T05:06:00+00:00", "email": "a@x.test"}
    assert resp.headers["Cache-Control"] == "no-store"


async def test_help_page(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/help")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "<title>Importing your certificate · certgate</title>" in await resp.text()
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_references_are_twelve_hex_digits_and_distinct() -> None:
    refs = [pages.new_reference() for _ in range(2000)]
    assert all(re.fullmatch(r"[0-9a-f]{12}", r) for r in refs)
    assert len(set(refs)) == len(refs)


def test_references_of_one_moment_share_their_first_digits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Time-ordered so the audit index on them grows in one place; 16-second steps.
    monkeypatch.setattr(pages, "_clock", lambda: 1_800_000_000.0)
    now = {pages.new_reference()[:3] for _ in range(100)}
    monkeypatch.setattr(pages, "_clock", lambda: 1_800_000_016.0)
    later = {pages.new_reference()[:3] for _ in range(100)}
    assert now == {f"{(1_800_000_000 >> 4) & 0xFFF:03x}"} and len(later) == 1
    assert later != now


def test_jwks_is_public_and_cacheable() -> None:
    keys = {"keys": [{"kty": "EC", "kid": "k1"}]}
    resp = pages.jwks(None, keys)  # type: ignore[arg-type]  # the request is not read
    assert resp.status == 200 and resp.content_type == "application/json"
    assert resp.text == '{"keys": [{"kty": "EC", "kid": "k1"}]}'
    assert resp.headers["Cache-Control"] == "public, max-age=300"
