"""The request story end to end: real TLS on port 0, real clients, real upstreams."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import jwt
import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.store.errors import StoreError
from pki.ca import build_ca
from pki.keys import generate_key
from tests.gateway.conftest import (
    FREE_PORT,
    HOST,
    Gateway,
    apps,
    craft_cert,
    register,
    write_pair,
)


async def test_allowed_user_reaches_upstream_with_verified_identity(gateway: Gateway) -> None:
    status, body, headers = await gateway.request("GET", "/docs/page?q=1")
    assert status == 200
    seen = body["headers"]
    assert body["path"] == "/docs/page?q=1"
    assert seen["X-Certgate-User"] == "alice"
    assert seen["X-Certgate-Groups"] == "staff"
    assert seen["X-Forwarded-Proto"] == "https" and seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["Host"] == HOST
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    _, jwks, _ = await gateway.request("GET", "/.certgate/jwks.json")
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(seen["X-Certgate-Assertion"], key.key, algorithms=["ES256"],
                        audience=f"https://{HOST}", issuer="certgate")
    assert (claims["sub"], claims["groups"], claims["app"], claims["amr"]) == (
        "alice", ["staff"], "wiki", ["mtls"])
    assert claims["cert_sha256"] == gateway.runtime.index.resolve(
        claims["cert_sha256"], datetime.now(UTC)).fingerprint  # type: ignore[union-attr]
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(("user", "host", "method", "path", "status", "reason"), [
    ("bob", HOST, "GET", "/", 403, "no-matching-allow-rule"),          # outside the groups
    ("carol", "pbx.test", "POST", "/", 403, "no-matching-allow-rule"),  # wrong method
    ("carol", "pbx.test", "GET", "/", 403, "no-matching-allow-rule"),   # outside source net
    ("alice", "ops.test", "GET", "/", 403, "no-matching-allow-rule"),   # outside hours
    ("alice", HOST, "GET", "/admin", 403, "denied-by-rule"),           # denied path
    ("alice", HOST, "GET", "/admin/x", 403, "denied-by-rule"),
    ("alice", "secure.test", "GET", "/", 401, "mfa-required"),         # sign in first
    ("alice", "nope.test", "GET", "/", 421, "sni-host-mismatch"),       # SNI is wiki.test
    ("alice", "local.test", "POST", "/", 403, "no-matching-allow-rule"),
])
async def test_policy_refusals(gateway: Gateway, user: str, host: str, method: str, path: str,
                               status: int, reason: str) -> None:
    sni_host = HOST if reason == "sni-host-mismatch" else host
    headers = {"Host": host}
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl(user))
    async with aiohttp.ClientSession(connector=connector) as session, session.request(
            method, gateway.url(path), headers={**headers, "Accept": "application/json"},
            server_hostname=sni_host) as resp:
        body = await resp.json()
    assert (resp.status, body["error"]) == (status, reason)
    assert len(body["reference"]) == 12
    assert gateway.seen.requests == []  # the upstream saw nothing


async def test_unknown_host_is_refused(gateway: Gateway) -> None:
    status, body, _ = await gateway.request("GET", "/", host="nope.test")
    assert (status, body["error"]) == (404, "route-not-found")


async def test_local_network_rule_allows_loopback(gateway: Gateway) -> None:
    status, _, _ = await gateway.request("GET", "/", host="local.test")
    assert status == 200


async def test_no_certificate_gets_a_page_not_an_alert(gateway: Gateway) -> None:
    status, body, _ = await gateway.request("GET", "/", user=None)
    assert (status, body["error"]) == (401, "no-certificate")
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl(None))
    async with aiohttp.ClientSession(connector=connector) as session, session.get(
            gateway.url("/"), headers={"Host": HOST, "Accept": "text/html"},
            server_hostname=HOST) as resp:
        html = await resp.text()
    assert resp.status == 401 and "Certificate needed" in html
    assert "/.certgate/help" in html and resp.headers["Cache-Control"] == "no-store"
    status, _, _ = await gateway.request("GET", "/.certgate/help", user=None)
    assert status == 200


async def _handshake_fails(gateway: Gateway, files: tuple[Path, Path]) -> None:
    with pytest.raises((aiohttp.ClientConnectorError, aiohttp.ClientOSError,
                        aiohttp.ServerDisconnectedError, ssl.SSLError)):
        await gateway.request("GET", "/", files=files)


async def test_certificate_from_another_ca_gets_nothing(gateway: Gateway, tmp_path: Path) -> None:
    other, _ = build_ca("Evil Corp", now=datetime.now(UTC))
    cert, key = craft_cert(other, "alice", not_before=datetime.now(UTC) - timedelta(hours=1),
                           not_after=datetime.now(UTC) + timedelta(days=1))
    await _handshake_fails(gateway, write_pair(cert, key, tmp_path / "evil"))


async def test_look_alike_with_same_subject_and_issuer_name_gets_nothing(
        gateway: Gateway, tmp_path: Path) -> None:
    # Same subject, same issuer *name*, but signed by another key.
    ca = gateway.ca()
    impostor = generate_key()
    cert, key = craft_cert(ca, "alice", not_before=datetime.now(UTC) - timedelta(hours=1),
                           not_after=datetime.now(UTC) + timedelta(days=1), signer=impostor)
    await _handshake_fails(gateway, write_pair(cert, key, tmp_path / "lookalike"))


@pytest.mark.parametrize("kind", ["expired", "not-yet-valid", "server-auth-only"])
async def test_invalid_certificates_from_our_ca_fail_the_handshake(
        gateway: Gateway, tmp_path: Path, kind: str) -> None:
    now = datetime.now(UTC)
    window = {"expired": (now - timedelta(days=10), now - timedelta(days=1)),
              "not-yet-valid": (now + timedelta(days=1), now + timedelta(days=10)),
              "server-auth-only": (now - timedelta(hours=1), now + timedelta(days=1))}[kind]
    eku = ExtendedKeyUsageOID.SERVER_AUTH if kind == "server-auth-only" else \
        ExtendedKeyUsageOID.CLIENT_AUTH
    cert, key = craft_cert(gateway.ca(), "alice", not_before=window[0], not_after=window[1],
                           eku=eku)
    await register(gateway, cert, "alice")  # even when the database knows it
    await _handshake_fails(gateway, write_pair(cert, key, tmp_path / kind))


async def test_unknown_certificate_from_our_ca_is_refused(gateway: Gateway,
                                                          tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cert, key = craft_cert(gateway.ca(), "alice", not_before=now - timedelta(hours=1),
                           not_after=now + timedelta(days=1))
    status, body, _ = await gateway.request("GET", "/", files=write_pair(cert, key,
                                                                         tmp_path / "unk"))
    assert (status, body["error"]) == (403, "unknown-certificate")


async def test_expiry_is_checked_per_request_on_keep_alive(gateway: Gateway,
                                                           tmp_path: Path) -> None:
    # Valid at handshake time in real time; then the runtime's clock moves past
    # not_after while the TLS connection stays open.
    now = datetime.now(UTC)
    cert, key = craft_cert(gateway.ca(), "dave", not_before=now - timedelta(hours=1),
                           not_after=now + timedelta(hours=1))
    await register(gateway, cert, "dave")
    files = write_pair(cert, key, tmp_path / "short")
    await gateway.wait_for(lambda: _ready_for(gateway, cert.serial_number))
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl(files=files), limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def get() -> tuple[int, str]:
            async with session.get(gateway.url("/"), headers={"Host": HOST, "Accept":
                                   "application/json"}, server_hostname=HOST) as resp:
                return resp.status, (await resp.json()).get("error", "")
        assert (await get())[0] == 200
        real_clock = gateway.runtime.clock
        gateway.runtime.clock = lambda: cert.not_valid_after_utc + timedelta(seconds=1)
        try:
            assert await get() == (403, "certificate-expired")  # same TLS connection
        finally:
            gateway.runtime.clock = real_clock


async def _ready_for(gateway: Gateway, serial: int) -> bool:
    return gateway.runtime.index.ocsp_status(serial).state != "unknown"


async def test_revocation_applies_within_a_second_on_open_connections(gateway: Gateway) -> None:
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl("alice"), limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def get() -> tuple[int, str]:
            async with session.get(gateway.url("/"), headers={"Host": HOST, "Accept":
                                   "application/json"}, server_hostname=HOST) as resp:
                data = await resp.json()
                return resp.status, data.get("error", "")
        assert (await get())[0] == 200
        await gateway.revoke("alice")

        async def refused() -> bool:
            return await get() == (403, "certificate-revoked")

        assert await gateway.wait_for(refused, timeout=1.0) <= 1.0


def _get_over_tls(gateway: Gateway, ctx: ssl.SSLContext, session: ssl.SSLSession | None
                  ) -> tuple[bool, ssl.SSLSession | None, bytes]:
    """One HTTP/1.1 request on a fresh TLS connection, offering ``session`` to resume."""
    import socket

    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=HOST, session=session) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\n"
                    "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        return tls.session_reused, tls.session, data


async def test_tls_session_resumption_skips_the_handshake_but_not_the_checks(
        gateway: Gateway) -> None:
    ctx = gateway.client_ssl("alice")  # sessions belong to the context that made them
    reused, session, first = await asyncio.to_thread(_get_over_tls, gateway, ctx, None)
    assert not reused and first.startswith(b"HTTP/1.1 200")
    reused, _, second = await asyncio.to_thread(_get_over_tls, gateway, ctx, session)
    assert reused, "a returning client must be able to skip the full handshake"
    assert second.startswith(b"HTTP/1.1 200") and b'"X-Certgate-User": "alice"' in second
    # A resumed session carries the certificate of the original handshake: revoking it
    # must still refuse the next request made under that session.
    serial = await gateway.revoke("alice")

    async def revoked_in_memory() -> bool:
        return gateway.runtime.index.ocsp_status(serial).state == "revoked"

    await gateway.wait_for(revoked_in_memory)
    reused, _, third = await asyncio.to_thread(_get_over_tls, gateway, ctx, session)
    assert reused and third.startswith(b"HTTP/1.1 403") and b"certificate-revoked" in third


@pytest.mark.parametrize(("change", "reason"), [("disable", "user-disabled"),
                                                ("suspend", "certificate-suspended")])
async def test_disabled_user_and_suspended_certificate(gateway: Gateway, change: str,
                                                       reason: str) -> None:
    store = await gateway.store()
    try:
        if change == "disable":
            await store.set_user_enabled("alice", False)
        else:
            serial = (await store.list_certificates(user="alice"))[0].serial
            await store.suspend_certificate(serial, at=datetime.now(UTC))
    finally:
        await store.close()

    async def refused() -> bool:
        status, body, _ = await gateway.request("GET", "/")
        return (status, body.get("error")) == (403, reason)

    await gateway.wait_for(refused)


async def test_client_identity_headers_never_reach_upstream(gateway: Gateway) -> None:
    spoof = {"X-Certgate-User": "ceo", "X-Certgate-Groups": "admins", "X-Forwarded-For": "10.9.9.9",
             "X-Forwarded-Host": "evil.test", "Forwarded": "for=10.9.9.9", "X-Real-IP": "10.9.9.9",
             "X-Client-Cert": "forged", "X-Certgate-Assertion": "forged", "Connection": "X-Keep",
             "X-Keep": "named in Connection"}
    status, body, _ = await gateway.request("GET", "/", headers=spoof)
    assert status == 200
    seen = body["headers"]
    assert seen["X-Certgate-User"] == "alice" and seen["X-Certgate-Groups"] == "staff"
    assert seen["X-Forwarded-For"] == "127.0.0.1" and seen["X-Forwarded-Host"] == HOST
    for name in ("Forwarded", "X-Real-IP", "X-Client-Cert", "X-Keep"):
        assert name not in seen
    assert seen["X-Certgate-Assertion"] != "forged"


@pytest.mark.parametrize("path", ["/.certgate/whoami", "/.certgate/", "/.certgate/anything",
                                  "/x/../.certgate/whoami", "/.certgate/%2e%2e/admin"])
async def test_certgate_paths_are_never_proxied(gateway: Gateway, path: str) -> None:
    status, body, _ = await gateway.request("GET", path)
    assert gateway.seen.requests == []
    if status == 200:
        assert body["user"] == "alice"
    else:
        assert status in (400, 403, 404)  # resolved first, then judged; never proxied


@pytest.mark.parametrize(("path", "expect"), [
    ("/a/../docs", (200, "/docs")),
    ("/a/%2e%2e/docs", (200, "/docs")),
    ("/a/../admin", (403, "denied-by-rule")),
    ("/%2e%2e/admin", (400, "ambiguous-path")),
    ("//admin", (403, "denied-by-rule")),
    ("/docs//x", (200, "/docs/x")),
    ("/a%2fb", (400, "ambiguous-path")),
    ("/a%5cb", (400, "ambiguous-path")),
    ("/a%00b", (400, "ambiguous-path")),
    ("/%7Euser", (200, "/~user")),
])
async def test_path_tricks_are_judged_on_what_upstream_receives(
        gateway: Gateway, path: str, expect: tuple[int, str]) -> None:
    status, body, _ = await gateway.request("GET", path)
    if status == 200:
        assert (status, body["path"]) == expect
    else:
        assert (status, body["error"]) == expect
        assert gateway.seen.requests == []


async def test_backslash_is_refused_with_curl(gateway: Gateway) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    cert, key = gateway.certs["alice"]
    proc = await asyncio.create_subprocess_exec(
        "curl", "-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
        str(gateway.ca_pem), "--cert", str(cert), "--key", str(key), "--resolve",
        f"{HOST}:{gateway.port}:127.0.0.1", f"https://{HOST}:{gateway.port}/a\\..\\admin",
        stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out.decode() == "400"


async def test_curl_with_client_certificate(gateway: Gateway) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    cert, key = gateway.certs["alice"]
    proc = await asyncio.create_subprocess_exec(
        "curl", "-s", "--cacert", str(gateway.ca_pem), "--cert", str(cert), "--key", str(key),
        "--resolve", f"{HOST}:{gateway.port}:127.0.0.1", f"https://{HOST}:{gateway.port}/hello",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    assert b'"X-Certgate-User": "alice"' in out
    seen = json.loads(out)["headers"]
    # The upstream gets the client's own headers, nothing the gateway's HTTP client
    # would add by itself: curl asked for no compression, so none may be offered.
    assert "Accept-Encoding" not in seen
    assert seen["User-Agent"].startswith("curl/")
    proc = await asyncio.create_subprocess_exec(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(gateway.ca_pem),
        "--resolve", f"{HOST}:{gateway.port}:127.0.0.1", f"https://{HOST}:{gateway.port}/",
        stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out == b"401"


async def test_location_refresh_and_cookie_domain_are_rewritten(gateway: Gateway) -> None:
    status, _, headers = await gateway.request("GET", "/redirect")
    assert status == 302
    assert headers["Location"] == f"https://{HOST}:{gateway.port}/landing?x=1"
    assert headers["Refresh"] == f"0; url=https://{HOST}:{gateway.port}/r"
    assert "Domain=wiki.test" in headers["Set-Cookie"]


async def test_plain_http_urls_built_from_the_public_host_become_https(gateway: Gateway) -> None:
    status, _, headers = await gateway.request("GET", "/php-redirect")
    assert status == 302
    public = f"https://{HOST}:{gateway.port}"
    assert headers["Location"] == f"{public}/landed"
    assert headers["Content-Location"] == f"{public}/doc"
    assert headers["Refresh"] == f"0; url={public}/r"


async def test_body_over_route_limit_gets_413_and_upstream_sees_nothing(gateway: Gateway) -> None:
    status, body, _ = await gateway.request("POST", "/small/upload", data=b"x" * (2 * 2**20))
    assert (status, body["error"], body["limit_bytes"]) == (413, "body-too-large", 2**20)
    assert "1 MiB" in body["message"]
    assert gateway.seen.requests == [] and gateway.seen.upload_bytes == 0


async def test_streamed_upload_and_download_are_byte_exact(gateway: Gateway) -> None:
    import hashlib

    async def gen() -> object:
        for i in range(32):
            yield bytes([i]) * 2**20

    expected = hashlib.sha256(b"".join(bytes([i]) * 2**20 for i in range(32))).hexdigest()
    status, body, _ = await gateway.request("POST", "/upload", data=gen())
    assert (status, body["bytes"], body["sha256"]) == (200, 32 * 2**20, expected)
    status, data, headers = await gateway.request("GET", "/big?mib=16")
    assert status == 200 and len(data) == 16 * 2**20 and headers["Content-Length"] == str(
        16 * 2**20)


async def test_upstream_down_is_a_502_page(gateway: Gateway) -> None:
    config = gateway.config_path.read_text().replace(
        f"http://127.0.0.1:{gateway.upstream_port}", "http://127.0.0.1:1")
    gateway.config_path.write_text(config)
    assert gateway.runtime.reload(gateway.config_path)
    status, body, _ = await gateway.request("GET", "/")
    assert (status, body["error"]) == (502, "upstream-unavailable")
    assert "127.0.0.1:1" not in str(body)  # no internal detail for people


async def test_websocket_echo_with_subprotocol_and_close_code(gateway: Gateway) -> None:
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl("alice"))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.ws_connect(gateway.url("/ws").replace("https", "wss"),
                                      headers={"Host": HOST}, server_hostname=HOST,
                                      protocols=("sip",)) as ws:
            assert ws.protocol == "sip"
            await ws.send_str("REGISTER")
            assert (await ws.receive()).data == "echo:REGISTER"
            await ws.send_str("close-4001")
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 4001
            assert msg.extra == "bye from upstream"
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(gateway.url("/ws").replace("https", "wss"),
                                     headers={"Host": HOST}, server_hostname=HOST,
                                     protocols=("unknown-proto",))
        assert info.value.status == 400  # the upstream's answer, not a 101


@apps(wiki={"ws_idle_timeout": "1s", "ws_ping_interval": 0.3})
async def test_websocket_pings_and_idle_timeout(gateway: Gateway) -> None:
    # Softphones sit silent between re-registrations: the gateway pings them at the
    # configured interval, and closes with 1001 only after the idle timeout.
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl("alice"))
    async with aiohttp.ClientSession(connector=connector) as session, session.ws_connect(
            gateway.url("/ws").replace("https", "wss"), headers={"Host": HOST},
            server_hostname=HOST, autoping=False) as ws:
        await ws.send_str("hello")
        pings, echoed, started = 0, False, loop.time()
        while True:
            msg = await asyncio.wait_for(ws.receive(), 10)
            if msg.type is aiohttp.WSMsgType.PING:
                pings += 1
                await ws.pong(msg.data)
            elif msg.type is aiohttp.WSMsgType.TEXT:
                echoed = msg.data == "echo:hello"
                started = loop.time()
            else:
                break
        idle = loop.time() - started
    assert echoed and pings >= 2
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001, msg
    assert 1.0 <= idle < 8.0


async def test_websocket_is_closed_on_revocation(gateway: Gateway) -> None:
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl("alice"))
    async with aiohttp.ClientSession(connector=connector) as session, session.ws_connect(
            gateway.url("/ws").replace("https", "wss"), headers={"Host": HOST},
            server_hostname=HOST) as ws:
        await ws.send_str("hi")
        assert (await ws.receive()).data == "echo:hi"
        store = await gateway.store()
        try:
            serial = (await store.list_certificates(user="alice"))[0].serial
            await store.revoke_certificate(serial, reason=None, at=datetime.now(UTC))
        finally:
            await store.close()
        msg = await asyncio.wait_for(ws.receive(), 2.0)
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1008


async def test_websocket_refused_where_disabled(gateway: Gateway) -> None:
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl("carol"))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(gateway.url("/ws").replace("https", "wss"),
                                     headers={"Host": "local.test"}, server_hostname="local.test")
    assert info.value.status == 403


async def test_database_outage_keeps_serving_from_memory(gateway: Gateway) -> None:
    await gateway.runtime.store.close()
    (gateway.data_dir / "certgate.db").rename(gateway.data_dir / "moved.db")
    with pytest.raises(StoreError):
        await gateway.runtime.follower.poll_once()  # type: ignore[union-attr]
    status, _, _ = await gateway.request("GET", "/")
    assert status == 200
    status, body, _ = await gateway.request("GET", "/", user="bob")
    assert (status, body["error"]) == (403, "no-matching-allow-rule")  # enforced from memory

    # The running follower says so: /readyz degraded (still 200), the task metric 0.
    follower = gateway.runtime.follower
    assert follower is not None

    async def down() -> bool:
        return not follower.healthy

    async def up() -> bool:
        return follower.healthy

    await gateway.wait_for(down, timeout=5)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{gateway.admin_port}/readyz") as resp:
            assert resp.status == 200
            ready = await resp.json()
        async with session.get(f"http://127.0.0.1:{gateway.admin_port}/metrics") as resp:
            text = await resp.text()
    assert ready["status"] == "degraded" and ready["database_reachable"] is False
    task = next(d for d in ready["degraded"] if d["component"] == "change follower")
    assert task["reason"].startswith("failing") and task["since"]
    assert 'certgate_background_task_healthy{task="change_follower"} 0.0' in text

    (gateway.data_dir / "moved.db").rename(gateway.data_dir / "certgate.db")
    await gateway.wait_for(up, timeout=10)

    async def follower_recovered() -> bool:
        # Other tasks (the CRL re-signer backs off up to 30 s) recover on their own time.
        async with (aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{gateway.admin_port}/readyz") as resp):
            ready = await resp.json()
        return bool(ready["database_reachable"]) and not any(
            d["component"] in ("database", "change follower") for d in ready["degraded"])

    await gateway.wait_for(follower_recovered, timeout=10)


async def test_metrics_and_health(gateway: Gateway) -> None:
    await gateway.request("GET", "/")
    await gateway.request("GET", "/", user="bob")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{gateway.admin_port}/metrics") as resp:
            text = await resp.text()
        async with session.get(f"http://127.0.0.1:{gateway.admin_port}/readyz") as resp:
            ready = await resp.json()
        async with session.get(f"http://127.0.0.1:{gateway.admin_port}/healthz") as resp:
            assert resp.status == 200
    assert 'certgate_requests_total{app="wiki",decision="allow",status="2xx"} 1.0' in text
    assert 'decision="deny",status="4xx"' in text
    assert "alice" not in text and "bob" not in text  # no users in labels
    assert ready["ready"] is True and ready["certificates"] == 4


async def test_audit_record_matches_the_reference_on_the_page(gateway: Gateway) -> None:
    import json

    _, body, _ = await gateway.request("GET", "/admin")
    await gateway.runtime.audit.flush()
    lines = [json.loads(x) for x in gateway.runtime.audit.path.read_text().splitlines()]
    record = next(r for r in lines if r["reference"] == body["reference"])
    assert (record["user"], record["decision"], record["reason"], record["rule"],
            record["path"]) == ("alice", "deny", "denied-by-rule", "wiki.deny[0]", "/admin")


@apps(wiki={"ports": [FREE_PORT]})
async def test_extra_port_reaches_only_its_app(gateway: Gateway) -> None:
    extra_port = gateway.extra_port
    assert extra_port is not None
    status, body, _ = await gateway.request("GET", "/ucp", port=extra_port)
    assert (status, body["path"]) == (200, "/ucp")
    status, body, _ = await gateway.request("GET", "/", host="local.test", port=extra_port)
    assert (status, body["error"]) == (404, "route-not-found")
