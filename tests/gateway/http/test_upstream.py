"""Per-app upstream TLS (own CA bundle, pinned certificate, server-name override,
verification off) and upstream timeouts, end to end through the gateway."""

from __future__ import annotations

import hashlib
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding

from pki.ca import build_ca, issue_server_cert
from pki.keys import generate_key, key_to_pem
from tests.gateway.conftest import Gateway, apps
from tests.gateway.upstreams import Seen, upstream_app

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def upstream_pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A PBX-like upstream CA and a certificate for the name 'pbx.internal' only."""
    ca, _ = build_ca("PBX Vendor", now=NOW)
    key = generate_key()
    cert = issue_server_cert(ca, key.public_key(), ["pbx.internal"], days=30, now=NOW)
    out = tmp_path_factory.mktemp("upstream-tls")
    (out / "ca.pem").write_bytes(ca.issuing_cert.public_bytes(Encoding.PEM)
                                 + ca.root_cert.public_bytes(Encoding.PEM))
    (out / "cert.pem").write_bytes(cert.public_bytes(Encoding.PEM)
                                   + ca.issuing_cert.public_bytes(Encoding.PEM))
    (out / "key.pem").write_bytes(key_to_pem(key, None))
    return {"dir": out, "pin": hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()}


async def _https_upstream(upstream_pki: dict[str, object]) -> tuple[web.AppRunner, int]:
    directory = upstream_pki["dir"]
    assert isinstance(directory, Path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    runner = web.AppRunner(upstream_app(Seen()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx).start()
    return runner, int(runner.addresses[0][1])


def _reconfigure(gateway: Gateway, **pbx: object) -> None:
    import yaml

    data = yaml.safe_load(gateway.config_path.read_text())
    for app in data["apps"]:
        if app["name"] == "local":
            app.update(pbx)
    gateway.config_path.write_text(yaml.safe_dump(data))
    assert gateway.runtime.reload(gateway.config_path)


@pytest.mark.parametrize(("settings", "status"), [
    ({"upstream_ca": "{dir}/ca.pem", "upstream_server_name": "pbx.internal"}, 200),
    ({"upstream_ca": "{dir}/ca.pem"}, 502),                  # name mismatch: 127.0.0.1
    ({}, 502),                                               # system CAs don't know it
    ({"upstream_pin_sha256": "{pin}"}, 200),
    ({"upstream_pin_sha256": "00" * 32}, 502),               # wrong pin
    ({"upstream_verify": False}, 200),
])
async def test_upstream_tls_per_app(gateway: Gateway, upstream_pki: dict[str, object],
                                    settings: dict[str, object], status: int) -> None:
    runner, port = await _https_upstream(upstream_pki)
    try:
        _reconfigure(gateway, upstream=f"https://127.0.0.1:{port}", **{
            k: (v.format(**upstream_pki) if isinstance(v, str) else v)
            for k, v in settings.items()})
        got, body, _ = await gateway.request("GET", "/hello", host="local.test")
        assert got == status, body
        if status == 200:
            assert body["headers"]["X-Certgate-User"] == "alice"
        else:
            assert body["error"] == "upstream-unavailable"
    finally:
        await runner.cleanup()


@apps(wiki={"routes": [{"path": "/slow", "read_timeout": "300ms"}]})
async def test_slow_upstream_is_a_504_page(gateway: Gateway) -> None:
    status, body, _ = await gateway.request("GET", "/slow")
    assert (status, body["error"]) == (504, "upstream-timeout")
    status, _, _ = await gateway.request("GET", "/fast")
    assert status == 200
