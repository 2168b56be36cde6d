"""The gateway renews its own server certificate (issue 12 point 6): under a clock moved
past two thirds of the certificate's lifetime it issues a new one from its CA, new
handshakes get it while an open keep-alive connection keeps working, the files are
replaced (key 0600), and the renewal is logged and audited."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.config import load_config
from gateway.manage.servers import certificate_names, read_leaf
from gateway.ops.renewal import renewal_due, renews_itself
from tests.gateway.conftest import HOST, Gateway, build_ca
from tests.gateway.http.test_tls_reload import client_context, get_on


async def served_serial(gw: Gateway) -> int:
    """The serial of the certificate a new handshake gets (not verified: the renewed
    certificate is valid only from the moved clock's "now", in the real future)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", gw.port, ssl=ctx,
                                              server_hostname=HOST)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number
    finally:
        writer.close()


async def test_server_certificate_renews_while_a_keep_alive_connection_stays_open(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    runtime, renewer = gateway.runtime, gateway.runtime.renewer
    assert renewer is not None
    cert_path = runtime.state.config.tls.cert
    old = read_leaf(cert_path)
    assert await served_serial(gateway) == old.serial_number
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port,
                                                   ssl=client_context(gateway),
                                                   server_hostname=HOST)
    try:
        assert await get_on(reader, writer) == 200
        # Not yet due: a look changes nothing and comes back within the poll period.
        assert 1.0 <= await renewer.round() <= 60.0
        assert read_leaf(cert_path).serial_number == old.serial_number
        moved = renewal_due(old, 2 / 3) + timedelta(days=1)
        runtime.clock = lambda: moved
        caplog.set_level(logging.WARNING, "certgate")
        renewer.wake.set()

        async def renewed() -> bool:
            return read_leaf(cert_path).serial_number != old.serial_number \
                and renewer.loaded is not None and runtime.state.tls_context is not None \
                and await served_serial(gateway) == read_leaf(cert_path).serial_number

        await gateway.wait_for(renewed, timeout=10)
        new = read_leaf(cert_path)
        # The same keep-alive connection still works, on its old handshake.
        assert await get_on(reader, writer) == 200
        assert writer.get_extra_info("ssl_object").getpeercert(binary_form=True) \
            == old.public_bytes(Encoding.DER)
    finally:
        writer.close()
    assert certificate_names(new) == certificate_names(old)
    assert new.not_valid_after_utc - new.not_valid_before_utc \
        == old.not_valid_after_utc - old.not_valid_before_utc
    assert new.not_valid_before_utc > moved - timedelta(minutes=10)
    assert new.public_key() != old.public_key()
    key = runtime.state.config.tls.key
    assert key.stat().st_mode & 0o777 == 0o600
    assert not list(cert_path.parent.glob(".*.tmp"))
    assert renewer.health.problem() is None
    assert f"serial {new.serial_number:X} replaces {old.serial_number:X}" in caplog.text
    # The audit record, written by the node's writer to the JSON-lines copy.
    audit = gateway.data_dir / "audit" / "audit.jsonl"

    async def audited() -> bool:
        return audit.exists() and "server_cert.renew" in audit.read_text()

    await gateway.wait_for(audited, timeout=10)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    renew = json.loads(next(r for r in records if r["type"] == "server_cert.renew")["detail"])
    assert renew["serial"] == f"{new.serial_number:X}"
    assert renew["old_serial"] == f"{old.serial_number:X}"
    # Due again only two thirds into the new lifetime.
    assert renewal_due(new, 2 / 3) > moved + timedelta(days=200)


async def test_a_certificate_from_another_ca_or_auto_renew_off_is_left_alone(
        gateway: Gateway, tmp_path: Path) -> None:
    config = gateway.runtime.state.config
    leaf = read_leaf(config.tls.cert)
    assert renews_itself(leaf, config) is None
    cfg = yaml.safe_load(gateway.config_path.read_text())
    cfg["tls"]["auto_renew"] = False
    gateway.config_path.write_text(yaml.safe_dump(cfg))
    assert renews_itself(leaf, load_config(gateway.config_path)) == "tls.auto_renew is false"
    other, _ = build_ca("Elsewhere", now=datetime.now(UTC))
    foreign = other.issuing_cert
    assert renews_itself(foreign, config) == "it was not issued by this gateway's CA"
    # Under a moved clock the renewer leaves a foreign certificate as it is.
    gateway.runtime.clock = lambda: leaf.not_valid_after_utc - timedelta(days=1)
    renewer = gateway.runtime.renewer
    assert renewer is not None
    elsewhere = tmp_path / "public-ca.pem"
    elsewhere.write_bytes(foreign.public_bytes(Encoding.PEM))
    moved = config.model_copy(update={"tls": config.tls.model_copy(update={"cert": elsewhere})})
    assert await renewer._renew_if_due(moved) > 0
    assert read_leaf(elsewhere).serial_number == foreign.serial_number


async def test_due_without_the_ca_key_fails_visibly_then_renews_when_it_is_back(
        gateway: Gateway) -> None:
    runtime, renewer = gateway.runtime, gateway.runtime.renewer
    assert renewer is not None
    config = runtime.state.config
    old = read_leaf(config.tls.cert)
    key = config.pki.ca_dir / "issuing-key.pem"
    aside = key.with_name("issuing-key.aside")
    key.rename(aside)
    moved = renewal_due(old, 2 / 3) + timedelta(days=1)
    runtime.clock = lambda: moved
    renewer.wake.set()

    async def failing() -> bool:
        return renewer.health.failing

    await gateway.wait_for(failing, timeout=10)
    assert "issuing-key.pem" in (renewer.health.problem() or "")
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{gateway.admin_port}/readyz") as resp:
        body = await resp.json()
    assert resp.status == 200 and body["status"] == "degraded"
    entry = next(d for d in body["degraded"] if d["component"] == "server certificate renewer")
    assert "issuing-key.pem" in entry["reason"]
    assert entry["meaning"] == "the current server certificate stays in use until it expires"
    assert read_leaf(config.tls.cert).serial_number == old.serial_number
    aside.rename(key)
    renewer.wake.set()

    async def recovered() -> bool:
        return not renewer.health.failing \
            and read_leaf(config.tls.cert).serial_number != old.serial_number

    await gateway.wait_for(recovered, timeout=10)
    assert renewer.health.problem() is None
