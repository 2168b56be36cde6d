"""``/.certgate/lost`` over real TLS, from a client that presents no certificate.

A fresh certificate for dave is issued through ``manage`` (as `certgate cert issue`
does), so the test holds its stop code. Then: the right code stops it (dave's open
keep-alive connection is refused within 1 s, ``openssl ocsp`` says revoked with
certificateHold), the code works once, a wrong code and an unknown user get the
same page, a flood is rate-limited, `certgate cert resume` brings the certificate
back, the admin is told (log, metric, audit, webhook, e-mail), and the code is nowhere in
the clear (data dir, logs, audit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from gateway.auth.stopcodes import normalise
from gateway.config.lost import LostConfig
from gateway.config.mail import MailConfig
from gateway.manage import certs
from gateway.manage.bundles import BundleRequest
from gateway.store.db import serial_hex
from gateway.store.records import CertStatus
from tests.gateway.conftest import HOST, Gateway, cli, extract_pem
from tests.gateway.mailserver import running_mailserver
from tests.gateway.ops.test_mail import free_port

LOST = "/.certgate/lost"
P12_PASSWORD = "dave-p12-password"


@dataclass
class Issued:
    serial: int
    code: str
    files: tuple[Path, Path]
    cert_pem: Path


async def issue_for(gateway: Gateway, user: str, tmp_path: Path) -> Issued:
    """A certificate with its stop code, issued as the CLI does, and indexed by the gateway."""
    pw = tmp_path / f"{user}-pw"
    pw.write_text(P12_PASSWORD + "\n")
    store = await gateway.store()
    try:
        issued = await certs.issue_certificate(
            store, gateway.runtime.state.config, gateway.ca, user=user,
            bundle=BundleRequest(out=tmp_path / f"{user}-new.p12", password=P12_PASSWORD),
            now=gateway.runtime.clock())
    finally:
        await store.close()
    assert issued.stop_code is not None
    files = extract_pem(issued.path, P12_PASSWORD, tmp_path / f"{user}-new")

    async def indexed() -> bool:
        return gateway.runtime.index.holder(issued.record.fingerprint) is not None

    await gateway.wait_for(indexed)
    return Issued(issued.record.serial, issued.stop_code, files, files[0])


def anonymous(gateway: Gateway) -> aiohttp.ClientSession:
    """A browser-like client without any certificate, keeping cookies for 127.0.0.1."""
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl(None))
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 headers={"Host": HOST, "Accept": "text/html"})


async def get_form(gateway: Gateway, client: aiohttp.ClientSession) -> str:
    async with client.get(gateway.url(LOST), server_hostname=HOST) as resp:
        body = await resp.text()
        assert resp.status == 200, body
        assert "Stop my certificate" in body
    found = re.search(r'name="csrf" value="([^"]+)"', body)
    assert found is not None
    return found.group(1)


async def post_code(gateway: Gateway, client: aiohttp.ClientSession, user: str, code: str,
                    csrf: str | None = None) -> tuple[int, str]:
    token = csrf if csrf is not None else await get_form(gateway, client)
    async with client.post(gateway.url(LOST), server_hostname=HOST,
                           data={"csrf": token, "user": user, "code": code}) as resp:
        return resp.status, await resp.text()


def comparable(body: str) -> str:
    """The page without what differs on every answer (token, reference)."""
    body = re.sub(r'name="csrf" value="[^"]+"', 'name="csrf" value=""', body)
    return re.sub(r"<code>[0-9a-f]{12}</code>", "<code></code>", body)


async def ocsp(gateway: Gateway, cert_pem: Path) -> str:
    ca = gateway.data_dir / "ca"
    proc = await asyncio.create_subprocess_exec(
        "openssl", "ocsp", "-url", f"http://127.0.0.1:{gateway.pki_port}/ocsp",
        "-issuer", str(ca / "issuing.pem"), "-CAfile", str(ca / "root.pem"),
        "-cert", str(cert_pem), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    return (await proc.communicate())[0].decode()


def metric(gateway: Gateway, name: str, **labels: str) -> float:
    value = gateway.runtime.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
async def test_the_right_code_stops_the_certificate_everywhere_once(
        gateway: Gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dave = await issue_for(gateway, "dave", tmp_path)
    # dave's browser, with an open keep-alive connection (one connection, reused).
    opened: list[object] = []

    async def on_open(*_: object) -> None:
        opened.append(object())

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_open)
    held = aiohttp.TCPConnector(ssl=gateway.client_ssl(files=dave.files), limit=1)
    async with aiohttp.ClientSession(connector=held, headers={"Host": HOST},
                                     trace_configs=[trace]) as browser:
        async with browser.get(gateway.url("/"), server_hostname=HOST) as resp:
            assert resp.status == 200

        caplog.set_level(logging.INFO, logger="certgate")
        async with anonymous(gateway) as stranger:
            status, body = await post_code(gateway, stranger, "dave", dave.code.upper())
        assert status == 200, body
        ending = serial_hex(dave.serial)[-4:]
        assert f"Your certificate ending <strong>…{ending}</strong> is stopped." in body

        async def refused() -> bool:
            async with browser.get(gateway.url("/"), server_hostname=HOST,
                                   headers={"Accept": "application/json"}) as resp:
                data = await resp.json(content_type=None)
                return resp.status == 403 and data["error"] == "certificate-suspended"

        took = await gateway.wait_for(refused, timeout=1.0)
        assert took < 1.0
        assert len(opened) == 1  # one keep-alive connection carried every request

    out = await ocsp(gateway, dave.cert_pem)
    assert f"{dave.cert_pem}: revoked" in out and "Reason: certificateHold" in out, out
    store = await gateway.store()
    try:
        assert (await store.get_certificate(dave.serial)).status is CertStatus.SUSPENDED
        latest = await store.latest_crl()  # republished at once, certificateHold in it
        assert latest is not None
        entry = x509.load_der_x509_crl(latest[3]).get_revoked_certificate_by_serial_number(
            dave.serial)
        assert entry is not None
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        assert reason is x509.ReasonFlags.certificate_hold
    finally:
        await store.close()

    # The admin is told: an ERROR line, the counter, a cert.lost audit record.
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "STOPPED" in
              r.getMessage()]
    assert errors and serial_hex(dave.serial) in errors[0].getMessage()
    assert metric(gateway, "certgate_lost_attempts_total", result="stopped") == 1

    async def audited() -> list[dict[str, Any]]:
        path = gateway.data_dir / "audit" / "audit.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [r for r in map(json.loads, lines) if r.get("type") == "cert.lost"]

    await gateway.wait_for(audited)
    record = (await audited())[0]
    assert (record["user"], record["serial"], record["source_ip"]) == \
        ("dave", serial_hex(dave.serial), "127.0.0.1")

    # Once: the same code again gets the page a wrong code gets.
    async with anonymous(gateway) as stranger:
        again = await post_code(gateway, stranger, "dave", dave.code)
        wrong = await post_code(gateway, stranger, "dave", "2345-6789-abcd")
    assert again[0] == wrong[0] == 403
    assert comparable(again[1]) == comparable(wrong[1])

    # The admin resumes it: the certificate works again.
    await asyncio.to_thread(cli, "--config", str(gateway.config_path), "cert", "resume",
                            serial_hex(dave.serial))
    connector = aiohttp.TCPConnector(ssl=gateway.client_ssl(files=dave.files))
    async with aiohttp.ClientSession(connector=connector, headers={"Host": HOST}) as browser:
        async def allowed() -> bool:
            async with browser.get(gateway.url("/"), server_hostname=HOST) as resp:
                return resp.status == 200

        await gateway.wait_for(allowed)

    # The stop code is nowhere in the clear: data dir (database, audit, spool), logs.
    variants = {dave.code, dave.code.upper(), normalise(dave.code)}
    for path in gateway.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for variant in variants:
                assert variant.encode() not in data, path
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(v in logged for v in variants)


async def test_wrong_code_unknown_user_and_bad_input_look_the_same(
        gateway: Gateway, tmp_path: Path) -> None:
    dave = await issue_for(gateway, "dave", tmp_path)
    answers, times = [], []
    async with anonymous(gateway) as stranger:
        for user, code in (("dave", "2345-6789-abcd"), ("nobody", dave.code),
                           ("dave", "not a code"), ("", "")):
            csrf = await get_form(gateway, stranger)
            started = time.perf_counter()
            answers.append(await post_code(gateway, stranger, user, code, csrf))
            times.append(time.perf_counter() - started)
    statuses = {status for status, _ in answers}
    assert statuses == {403}, answers
    bodies = {comparable(body).replace('value="dave"', 'value=""')
              .replace('value="nobody"', 'value=""') for _, body in answers}
    assert len(bodies) == 1, bodies
    assert "do not match a certificate that can be stopped" in answers[0][1]
    # Each costs one argon2id check: no answer is an order of magnitude faster.
    assert min(times) > max(times) / 10, times
    store = await gateway.store()
    try:
        assert (await store.get_certificate(dave.serial)).status is CertStatus.ACTIVE
    finally:
        await store.close()


@pytest.mark.config(lost={"max_per_address": 4, "max_per_user": 2})
async def test_a_flood_is_limited_per_user_and_per_address(gateway: Gateway,
                                                           tmp_path: Path) -> None:
    dave = await issue_for(gateway, "dave", tmp_path)
    async with anonymous(gateway) as stranger:
        first = [await post_code(gateway, stranger, "dave", "2345-6789-abcd") for _ in range(2)]
        assert [s for s, _ in first] == [403, 403]
        # The third try for dave is refused unchecked, even with the right code.
        status, body = await post_code(gateway, stranger, "dave", dave.code)
        assert status == 429 and "Too many tries from here" in body, body
        assert "Wait 15 minutes" in body
        # This address has used 3 of 4: one more for another name, then nothing.
        assert (await post_code(gateway, stranger, "bob", "2345-6789-abcd"))[0] == 403
        status, _ = await post_code(gateway, stranger, "carol", "2345-6789-abcd")
        assert status == 429
    store = await gateway.store()
    try:
        assert (await store.get_certificate(dave.serial)).status is CertStatus.ACTIVE
    finally:
        await store.close()
    assert metric(gateway, "certgate_lost_attempts_total", result="limited") == 2


async def test_a_post_without_the_form_token_is_refused_and_checks_nothing(
        gateway: Gateway, tmp_path: Path) -> None:
    dave = await issue_for(gateway, "dave", tmp_path)
    async with anonymous(gateway) as stranger:
        await get_form(gateway, stranger)  # a cookie, but a forged token
        status, body = await post_code(gateway, stranger, "dave", dave.code, csrf="1.abc")
        assert status == 403 and "did not come from this page" in body
    # Another site's form: no cookie at all.
    async with anonymous(gateway) as other, other.post(
            gateway.url(LOST), server_hostname=HOST,
            data={"csrf": "x", "user": "dave", "code": dave.code}) as resp:
        assert resp.status == 403
    store = await gateway.store()
    try:
        assert (await store.get_certificate(dave.serial)).status is CertStatus.ACTIVE
    finally:
        await store.close()


async def test_only_the_lost_page_is_answered_without_a_certificate(gateway: Gateway) -> None:
    status, data, _ = await gateway.request("GET", "/", user=None)
    assert status == 401 and data["error"] == "no-certificate"
    status, data, _ = await gateway.request("GET", "/.certgate/whoami", user=None)
    assert status == 401
    status, body, headers = await gateway.request("GET", LOST, user=None,
                                                  headers={"Accept": "text/html"})
    assert status == 200 and b"Stop my certificate" in body
    assert "__Host-certgate-lost=" in headers["Set-Cookie"]
    assert "Secure" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]


async def test_the_webhook_hears_of_a_stopped_certificate(gateway: Gateway,
                                                          tmp_path: Path) -> None:
    heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await heard.put(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        runtime = gateway.runtime
        config = runtime.state.config.model_copy(update={"lost": LostConfig(
            webhook_url=f"http://127.0.0.1:{port}/hook")})
        runtime.state = replace(runtime.state, config=config)
        dave = await issue_for(gateway, "dave", tmp_path)
        async with anonymous(gateway) as stranger:
            status, _ = await post_code(gateway, stranger, "dave", dave.code)
        assert status == 200
        payload = await asyncio.wait_for(heard.get(), 5)
        assert payload["event"] == "cert.lost" and payload["user"] == "dave"
        assert payload["serial"] == serial_hex(dave.serial)
        assert payload["source_ip"] == "127.0.0.1"
        assert dave.code not in json.dumps(payload)
        await gateway.wait_for(lambda: _true(
            metric(gateway, "certgate_lost_webhook_total", result="sent") == 1))
    finally:
        await runner.cleanup()


async def test_an_unreachable_webhook_is_logged_and_never_blocks_the_page(
        gateway: Gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = gateway.runtime
    config = runtime.state.config.model_copy(update={"lost": LostConfig(
        webhook_url="http://127.0.0.1:9/nothing-listens")})
    runtime.state = replace(runtime.state, config=config)
    dave = await issue_for(gateway, "dave", tmp_path)
    caplog.set_level(logging.WARNING, logger="certgate")
    async with anonymous(gateway) as stranger:
        status, _ = await post_code(gateway, stranger, "dave", dave.code)
    assert status == 200
    await gateway.wait_for(lambda: _true(
        metric(gateway, "certgate_lost_webhook_total", result="failed") == 1))
    assert any("was not delivered" in r.getMessage() for r in caplog.records)


async def _true(value: bool) -> bool:
    return value


async def test_the_admin_gets_an_e_mail_without_the_stop_code(
        gateway: Gateway, tmp_path: Path) -> None:
    runtime = gateway.runtime
    async with running_mailserver() as server:
        config = runtime.state.config.model_copy(update={
            "lost": LostConfig(email_to=("it@example.com", "boss@example.com")),
            "mail": MailConfig(host="127.0.0.1", port=server.port, security="none",
                               sender="certgate@example.com")})
        runtime.state = replace(runtime.state, config=config)
        dave = await issue_for(gateway, "dave", tmp_path)
        async with anonymous(gateway) as stranger:
            status, _ = await post_code(gateway, stranger, "dave", dave.code)
        assert status == 200
        arrived = await server.next()
    serial = serial_hex(dave.serial)
    assert arrived.recipients == ["it@example.com", "boss@example.com"]
    assert arrived.message["Subject"] == \
        f"Certificate {serial} of dave was stopped with its stop code"
    assert f"The certificate {serial} of dave was stopped with its stop code at " in arrived.body
    assert "from 127.0.0.1." in arrived.body and "certificateHold" in arrived.body
    assert f"certgate cert resume {serial}" in arrived.body
    assert f"certgate cert revoke {serial} --reason keyCompromise" in arrived.body
    raw = arrived.message.as_string()
    assert dave.code not in raw and normalise(dave.code) not in raw
    assert P12_PASSWORD not in raw
    await gateway.wait_for(lambda: _true(
        metric(gateway, "certgate_mail_total", kind="lost", result="sent") == 1))


async def test_a_relay_that_is_down_never_blocks_the_page(
        gateway: Gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = gateway.runtime
    config = runtime.state.config.model_copy(update={
        "lost": LostConfig(email_to=("it@example.com",)),
        "mail": MailConfig(host="127.0.0.1", port=free_port(), security="none",
                           sender="certgate@example.com")})
    runtime.state = replace(runtime.state, config=config)
    dave = await issue_for(gateway, "dave", tmp_path)
    caplog.set_level(logging.WARNING, logger="certgate")
    async with anonymous(gateway) as stranger:
        status, body = await post_code(gateway, stranger, "dave", dave.code)
    assert status == 200 and "is stopped" in body
    await gateway.wait_for(lambda: _true(
        metric(gateway, "certgate_mail_total", kind="lost", result="failed") == 1))
    assert any("was not sent" in r.getMessage() and "stopped certificate" in r.getMessage()
               for r in caplog.records)
