"""Hostile requests against a real gateway and a real upstream, as one table.

Every row is sent byte for byte over TLS with a valid client certificate, so no
client library tidies the request first. The upstream records what it received and
the path a servlet container (Tomcat, Jetty) would route it to; a row passes when
the gateway refused it with the stated status and reason and the upstream saw
nothing, or when the upstream received exactly the stated path and would route it
where the policy judged. Add a row for every new trick; none may regress.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.gateway.conftest import Gateway


@dataclass(frozen=True)
class Row:
    host: str
    target: str
    status: int
    # For refusals: the reason code. For 200: the path the upstream received.
    expect: str
    routed: str | None = None  # for 200: where a servlet container routes it
    method: str = "GET"
    host_header: str | None = None  # when the Host differs from the TLS server name


ROWS: list[Row] = [
    # ';' path parameters: refused unless the app opts in.
    Row("wiki.test", "/admin;x/secret", 400, "ambiguous-path"),
    Row("wiki.test", "/admin;jsessionid=ABC/secret", 400, "ambiguous-path"),
    Row("wiki.test", "/admin%3bx/secret", 400, "ambiguous-path"),
    Row("wiki.test", "/docs;v=1", 400, "ambiguous-path"),
    Row("portal.test", "/public/..;/private", 400, "ambiguous-path"),
    Row("portal.test", "/public/x", 200, "/public/x", "/public/x"),
    Row("portal.test", "/private", 403, "no-matching-allow-rule"),
    # An app that accepts matrix parameters: judged without them, as its server routes.
    Row("servlet.test", "/admin;x/secret", 403, "denied-by-rule"),
    Row("servlet.test", "/admin;jsessionid=ABC/secret", 403, "denied-by-rule"),
    Row("servlet.test", "/public/..;/admin", 403, "denied-by-rule"),
    Row("servlet.test", "/;x/admin", 403, "denied-by-rule"),
    Row("servlet.test", "/.;x/admin/", 403, "denied-by-rule"),
    Row("servlet.test", "/docs;v=1/page", 200, "/docs;v=1/page", "/docs/page"),
    Row("servlet.test", "/docs/..;x/page", 200, "/page", "/page"),
    # Encodings a second decoder would read differently.
    Row("wiki.test", "/%c0%ae%c0%ae/admin", 400, "ambiguous-path"),
    Row("wiki.test", "/docs/%c0%ae%c0%ae/admin", 400, "ambiguous-path"),
    Row("wiki.test", "/docs/%ed%a0%80", 400, "ambiguous-path"),  # a UTF-16 surrogate
    Row("wiki.test", "/docs/%ff", 400, "ambiguous-path"),
    Row("wiki.test", "/%252e%252e/admin", 400, "ambiguous-path"),
    Row("wiki.test", "/docs/%252fadmin", 400, "ambiguous-path"),
    Row("wiki.test", "/caf%c3%a9", 200, "/caf%C3%A9", "/café"),
    # Case and trailing dots: only a case-insensitive server reads /ADMIN as /admin.
    Row("iis.test", "/ADMIN/x", 403, "denied-by-rule"),
    Row("iis.test", "/Admin", 403, "denied-by-rule"),
    Row("iis.test", "/admin./x", 400, "ambiguous-path"),
    Row("iis.test", "/admin%20/x", 400, "ambiguous-path"),
    Row("iis.test", "/docs/x", 200, "/docs/x", "/docs/x"),
    Row("wiki.test", "/ADMIN/x", 200, "/ADMIN/x", "/ADMIN/x"),
    # Tricks that already held: dot segments, encoded slashes, backslashes, NUL.
    Row("wiki.test", "/a/../admin", 403, "denied-by-rule"),
    Row("wiki.test", "/a/%2e%2e/admin", 403, "denied-by-rule"),
    Row("wiki.test", "/%2e%2e/admin", 400, "ambiguous-path"),
    Row("wiki.test", "//admin", 403, "denied-by-rule"),
    Row("wiki.test", "/docs%2fadmin", 400, "ambiguous-path"),
    Row("wiki.test", "/docs%5cadmin", 400, "ambiguous-path"),
    Row("wiki.test", "/docs\\..\\admin", 400, "ambiguous-path"),
    Row("wiki.test", "/docs%00", 400, "ambiguous-path"),
    Row("wiki.test", "/a/../docs", 200, "/docs", "/docs"),
    # Methods: TRACE would reflect the assertion JWT; made-up ones reach odd handlers.
    Row("wiki.test", "/docs", 405, "method-not-allowed", method="TRACE"),
    Row("wiki.test", "/docs", 405, "method-not-allowed", method="PURGE"),
    Row("wiki.test", "/docs", 200, "/docs", "/docs", method="PROPFIND"),
    # The Host: a port that is not a number, or another name than the TLS one.
    Row("wiki.test", "/docs", 400, "invalid-host", host_header="wiki.test:abc"),
    Row("wiki.test", "/docs", 421, "sni-host-mismatch", host_header="pbx.test"),
    # Absolute-form targets: refused, never resolved against another host.
    Row("wiki.test", "https://wiki.test/admin", 400, "ambiguous-path"),
    Row("wiki.test", "http://pbx.test/", 400, "ambiguous-path"),
]


async def send_raw(gw: Gateway, host: str, target: str, *, user: str = "alice",
                   extra: str = "", method: str = "GET", host_header: str | None = None
                   ) -> tuple[int, dict[str, Any]]:
    """One request, byte for byte, on its own TLS connection; the status and JSON body."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gw.port, ssl=gw.client_ssl(user), server_hostname=host)
    try:
        writer.write((f"{method} {target} HTTP/1.1\r\nHost: {host_header or host}\r\n"
                      f"Accept: application/json\r\n{extra}Connection: close\r\n\r\n"
                      ).encode("latin-1"))
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {"raw": body.decode("latin-1")}
    return status, data


async def test_hostile_requests(gateway: Gateway) -> None:
    failures: list[str] = []
    for row in ROWS:
        before = len(gateway.seen.requests)
        status, body = await send_raw(gateway, row.host, row.target, method=row.method,
                                      host_header=row.host_header)
        reached = gateway.seen.requests[before:]
        if row.status == 200:
            got: tuple[Any, ...] = (status, reached[0]["path"] if reached else None,
                                    reached[0]["routed"] if reached else None)
            want: tuple[Any, ...] = (200, row.expect, row.routed)
        else:
            got = (status, body.get("error"), len(reached))
            want = (row.status, row.expect, 0)
        if got != want:
            failures.append(f"{row.method} {row.host}{row.target}: got {got}, want {want}")
    assert not failures, "\n".join(failures)


# Headers an upstream may trust for routing, identity, address or method. Each is sent
# by the client; the upstream must receive none of them (or only the gateway's value).
SPOOFED: dict[str, str] = {
    "X-Original-URL": "/admin", "X-Rewrite-URL": "/admin", "X-Original-Host": "evil.test",
    "True-Client-IP": "10.9.9.9", "X-Client-IP": "10.9.9.9", "Client-IP": "10.9.9.9",
    "CF-Connecting-IP": "10.9.9.9", "Fastly-Client-IP": "10.9.9.9",
    "X-Cluster-Client-IP": "10.9.9.9", "X-Real-IP": "10.9.9.9", "Forwarded": "for=10.9.9.9",
    "X-Forwarded": "for=10.9.9.9", "X-Forwarded-Server": "evil.test",
    "X-ARR-ClientCert": "MIIforged", "X-Client-Cert": "forged", "X-SSL-Client-DN": "CN=ceo",
    "Ssl-Client-Verify": "SUCCESS", "Remote-User": "ceo", "X-Remote-User": "ceo",
    "X-HTTP-Method-Override": "DELETE", "X-HTTP-Method": "DELETE",
    "X-Method-Override": "DELETE", "X-Host": "evil.test",
    "X-Certgate-User": "ceo", "X-Certgate-Groups": "admins", "X-Certgate-Assertion": "forged",
    "X-Forwarded-For": "10.9.9.9", "X-Forwarded-Host": "evil.test",
}


async def test_spoofed_headers_never_reach_the_upstream(gateway: Gateway) -> None:
    extra = "".join(f"{name}: {value}\r\n" for name, value in SPOOFED.items())
    status, body = await send_raw(gateway, "wiki.test", "/docs", extra=extra)
    assert status == 200
    received = {k.lower(): v for k, v in body["headers"].items()}
    leaked = {name: received[name.lower()] for name, value in SPOOFED.items()
              if received.get(name.lower()) == value}
    assert leaked == {}
    ours = {"x-certgate-user": "alice", "x-certgate-groups": "staff",
            "x-forwarded-for": "127.0.0.1", "x-forwarded-host": "wiki.test"}
    assert {k: received.get(k) for k in ours} == ours


# Malformed requests: aiohttp's parser refuses them before the request story runs.
MALFORMED: list[bytes] = [
    b"GET /\x01<script>x</script> HTTP/1.1\r\nHost: wiki.test\r\n\r\n",  # control byte
    b"G<E>T / HTTP/1.1\r\nHost: wiki.test\r\n\r\n",  # invalid method token
    b"GET / HTTP/1.1\r\nHost: wiki.test\r\nBad<Header> line\r\n\r\n",  # bad header line
    b"GET / HTTP/9.9<x>\r\nHost: wiki.test\r\n\r\n",  # bad version
]


@pytest.mark.parametrize("raw", MALFORMED, ids=["control-byte", "method", "header", "version"])
async def test_malformed_requests_get_the_gateways_page_and_one_warning(
        gateway: Gateway, raw: bytes, caplog: pytest.LogCaptureFixture) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gateway.port, ssl=gateway.client_ssl("alice"), server_hostname="wiki.test")
    try:
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = head.decode("latin-1").lower()
    assert head.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400"))
    assert b"not valid HTTP" in body and b"<x>" not in body and b"script" not in body
    assert "x-content-type-options: nosniff" in headers
    assert "content-security-policy:" in headers and "server: certgate" in headers
    assert "aiohttp" not in headers and "python" not in headers
    warnings = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    assert not any(r.exc_info for r in caplog.records) and "Traceback" not in caplog.text
    await gateway.runtime.audit.flush()
    lines = gateway.runtime.state.config.audit.path.read_text().splitlines()
    bad = [json.loads(line) for line in lines if '"bad-request"' in line]
    assert len(bad) == 1 and (bad[0]["status"], bad[0]["decision"]) == (400, "deny")


async def test_every_listener_names_no_software_version(gateway: Gateway) -> None:
    _, _, public = await gateway.request("GET", "/admin")  # the gateway's own refusal
    async with aiohttp.ClientSession() as session:
        for port, path in ((gateway.admin_port, "/healthz"), (gateway.pki_port, "/crl")):
            async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                assert resp.headers.get("Server") == "certgate", (port, resp.headers)
    assert public.get("Server") == "certgate"
