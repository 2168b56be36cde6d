"""Reloads that mean what they say (issue 14 point 5): a reload applies the new
``tls:`` section to new handshakes (a renewed server certificate, the version
floor), refuses a broken one naming the file, and refuses a change of a key read
only at start naming the key; a refused reload leaves the old config serving."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.cli.main import main
from gateway.config import load_config
from gateway.manage.servers import issue_server_certificate
from gateway.runtime import restart_keys
from tests.gateway.conftest import HOST, Gateway


def edit(gw: Gateway, **changes: Any) -> None:
    """Rewrite the config file with top-level keys changed (``tls`` merged)."""
    cfg = yaml.safe_load(gw.config_path.read_text())
    if "tls" in changes:
        changes["tls"] = {**cfg["tls"], **changes["tls"]}
    cfg.update(changes)
    gw.config_path.write_text(yaml.safe_dump(cfg))


def client_context(gw: Gateway, *, tls12_only: bool = False) -> ssl.SSLContext:
    ctx = gw.client_ssl("alice")
    if tls12_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def handshake(gw: Gateway, ctx: ssl.SSLContext) -> tuple[str, str]:
    """A new TLS connection: (SHA-256 of the server certificate, protocol version)."""
    _, writer = await asyncio.open_connection("127.0.0.1", gw.port, ssl=ctx,
                                              server_hostname=HOST)
    try:
        obj = writer.get_extra_info("ssl_object")
        return hashlib.sha256(obj.getpeercert(binary_form=True)).hexdigest(), obj.version()
    finally:
        writer.close()


def new_server_cert(gw: Gateway) -> str:
    """A renewed server certificate in the data dir; returns its SHA-256."""
    out = gw.data_dir / "tls" / "renewed.pem"
    issued = issue_server_certificate(gw.ca, (HOST, "127.0.0.1"), out=out,
                                      key_out=out.with_name("renewed-key.pem"),
                                      key_type="ec-p256", now=datetime.now(UTC))
    # The file holds the leaf, then the issuing CA: the first block is the leaf.
    leaf = x509.load_pem_x509_certificate(issued.cert_path.read_bytes())
    return hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()


async def get_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """One keep-alive HTTP/1.1 GET / on an open connection; the status."""
    writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\n\r\n"
                 .encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
    await reader.readexactly(length)
    return int(head.split(" ", 2)[1])


async def test_renewed_certificate_serves_new_handshakes_open_connections_keep_theirs(
        gateway: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port,
                                                   ssl=client_context(gateway),
                                                   server_hostname=HOST)
    try:
        old_fp = hashlib.sha256(writer.get_extra_info("ssl_object").getpeercert(
            binary_form=True)).hexdigest()
        assert await get_on(reader, writer) == 200
        new_fp = new_server_cert(gateway)
        assert new_fp != old_fp
        edit(gateway, tls={"cert": str(gateway.data_dir / "tls" / "renewed.pem"),
                           "key": str(gateway.data_dir / "tls" / "renewed-key.pem")})
        assert gateway.runtime.reload(gateway.config_path)
        # A new handshake sees the renewed certificate, and requests work through it.
        assert (await handshake(gateway, client_context(gateway)))[0] == new_fp
        assert (await gateway.request("GET", "/"))[0] == 200
        # The open keep-alive connection goes on with the certificate it shook hands with.
        assert await get_on(reader, writer) == 200
    finally:
        writer.close()


async def test_min_version_13_refuses_new_tls12_handshakes(gateway: Gateway) -> None:
    assert (await handshake(gateway, client_context(gateway, tls12_only=True)))[1] == "TLSv1.2"
    edit(gateway, tls={"min_version": "1.3"})
    assert gateway.runtime.reload(gateway.config_path)
    # asyncio's server closes the refused handshake without flushing its alert (openssl
    # s_client reads 0 bytes), so the client sees a reset or an SSL error.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await handshake(gateway, client_context(gateway, tls12_only=True))
    assert (await handshake(gateway, client_context(gateway)))[1] == "TLSv1.3"
    assert (await gateway.request("GET", "/"))[0] == 200
    edit(gateway, tls={"min_version": "1.2"})  # and back: the floor follows the config
    assert gateway.runtime.reload(gateway.config_path)
    assert (await handshake(gateway, client_context(gateway, tls12_only=True)))[1] == "TLSv1.2"


@pytest.mark.parametrize(("key", "message"), [
    ("cert", "tls.cert: {path}: No such file or directory"),
    ("key", "tls.key: {path}: No such file or directory"),
    ("client_ca", "tls.client_ca: {path}: No such file or directory"),
])
async def test_missing_tls_file_refuses_the_reload_naming_it(
        gateway: Gateway, caplog: pytest.LogCaptureFixture, key: str, message: str) -> None:
    before, _ = await handshake(gateway, client_context(gateway))
    missing = gateway.data_dir / "tls" / "gone.pem"
    edit(gateway, tls={key: str(missing)})
    with caplog.at_level(logging.ERROR, logger="certgate"):
        assert not gateway.runtime.reload(gateway.config_path)
    assert message.format(path=missing) in caplog.text
    assert "REFUSED" in caplog.text
    assert (await handshake(gateway, client_context(gateway)))[0] == before
    assert (await gateway.request("GET", "/"))[0] == 200


async def test_mismatched_key_refuses_the_reload_naming_both_files(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    new_server_cert(gateway)  # a key that belongs to another certificate
    key = gateway.data_dir / "tls" / "renewed-key.pem"
    edit(gateway, tls={"key": str(key)})
    with caplog.at_level(logging.ERROR, logger="certgate"):
        assert not gateway.runtime.reload(gateway.config_path)
    assert f"{key}: the key does not match the certificate" in caplog.text
    assert (await gateway.request("GET", "/"))[0] == 200


async def test_listen_change_is_refused_and_says_restart(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    edit(gateway, listen="127.0.0.1:1", tls={"min_version": "1.3"})
    with caplog.at_level(logging.ERROR, logger="certgate"):
        assert not gateway.runtime.reload(gateway.config_path)
    assert "listen changed" in caplog.text and "restart" in caplog.text
    # Nothing of that reload applied: not the floor either.
    assert (await handshake(gateway, client_context(gateway, tls12_only=True)))[1] == "TLSv1.2"
    assert (await gateway.request("GET", "/"))[0] == 200


@pytest.mark.parametrize(("changes", "keys"), [
    ({"listen": "127.0.0.1:1"}, ["listen"]),
    ({"admin_listen": "127.0.0.1:2", "pki_listen": "127.0.0.1:3"}, ["admin_listen", "pki_listen"]),
    ({"workers": 2}, ["workers"]),
    ({"limits": {"max_anonymous": 7}}, ["limits"]),
    ({"database_url": "sqlite+aiosqlite:////tmp/other.db"}, ["database_url"]),
    ({"audit": {"path": "other-audit.jsonl"}}, ["audit.path"]),
    ({"log_level": "debug"}, ["log_level"]),
    ({"tls": {"min_version": "1.3"}}, []),
    ({"assertion": {"issuer": "elsewhere"}}, []),
])
def test_restart_keys(gateway_template: Any, tmp_path: Path, changes: dict[str, Any],
                      keys: list[str]) -> None:
    data_dir, _ = gateway_template.copy_to(tmp_path)
    path = data_dir / "certgate.yaml"
    old = load_config(path)
    cfg = yaml.safe_load(path.read_text())
    for name, value in changes.items():
        cfg[name] = {**cfg[name], **value} if isinstance(value, dict) and name in cfg else value
    path.write_text(yaml.safe_dump(cfg))
    assert restart_keys(old, load_config(path)) == keys


def test_extra_app_ports_need_a_restart(gateway_template: Any, tmp_path: Path) -> None:
    data_dir, _ = gateway_template.copy_to(tmp_path)
    path = data_dir / "certgate.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["apps"] = [{"name": "wiki", "host": HOST, "upstream": "http://127.0.0.1:9",
                    "allow": [{"groups": ["staff"]}]}]
    path.write_text(yaml.safe_dump(cfg))
    old = load_config(path)
    cfg["apps"][0]["ports"] = [8444]
    path.write_text(yaml.safe_dump(cfg))
    assert restart_keys(old, load_config(path)) == ["apps[].ports"]


def test_serve_with_a_missing_certificate_names_it(gateway_template: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # Before: "cannot listen: No such file or directory", naming no file.
    data_dir, _ = gateway_template.copy_to(tmp_path)
    path = data_dir / "certgate.yaml"
    cfg = yaml.safe_load(path.read_text())
    missing = data_dir / "tls" / "gone.pem"
    cfg.update(listen="127.0.0.1:0", admin_listen="127.0.0.1:0", pki_listen="127.0.0.1:0",
               tls={**cfg["tls"], "cert": str(missing)})
    path.write_text(yaml.safe_dump(cfg))
    assert main(["--config", str(path), "serve"]) == 1
    assert f"tls.cert: {missing}: No such file or directory" in capsys.readouterr().err
