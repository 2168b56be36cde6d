"""``manage.setup``: the data directory it creates, and what it refuses."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from gateway.config import Config, load_config
from gateway.manage import setup
from gateway.manage.errors import ManageError
from gateway.manage.setup import DataDir, SetupRequest
from gateway.store.store import Store
from pki.ca import load_ca
from pki.keys import WrongPassphraseError

SECRETS = ["ca/root-key.pem", "ca/issuing-key.pem", "ca/ocsp-key.pem", "tls/server-key.pem",
           "keys/assertion-es256.pem", "secrets.key", "certgate.yaml", "certgate.db"]


async def test_the_session_data_dir_has_everything_with_safe_modes(data_dir: DataDir,
                                                                   config: Config) -> None:
    for rel in SECRETS:
        assert stat.S_IMODE((data_dir.path / rel).stat().st_mode) == 0o600, rel
    assert stat.S_IMODE(data_dir.path.stat().st_mode) == 0o700
    assert (data_dir.path / "audit").is_dir()
    assert [p.name for p in data_dir.path.iterdir() if p.name.startswith(".")] == []
    assert not data_dir.encrypted
    assert config.public_hostnames == ("gw.example.test",)
    assert (config.pki.crl_url, config.pki.ocsp_url) == (
        "http://gw.example.test:8080/crl", "http://gw.example.test:8080/ocsp")
    assert str(config.pki_listen) == "0.0.0.0:8080"
    server = x509.load_pem_x509_certificate(data_dir.server_cert.read_bytes())
    assert server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.DNSName) == ["gw.example.test"]
    store = await Store.open(config.database_url)
    try:
        latest = await store.latest_crl()
    finally:
        await store.close()
    assert latest is not None and latest[0] == 1  # the first CRL is published


async def test_refuses_an_existing_ca_and_changes_nothing(data_dir: DataDir) -> None:
    before = {p: p.read_bytes() for p in data_dir.path.rglob("*") if p.is_file()
              and not p.name.startswith("certgate.db")}
    request = SetupRequest(data_dir=data_dir.path, hostnames=("x.test",),
                           pki_base_url="http://x.test:8080")
    with pytest.raises(ManageError, match=f"a CA already exists in {data_dir.ca_dir}"):
        await setup.create_data_dir(request, now=datetime.now(UTC))
    assert {p: p.read_bytes() for p in data_dir.path.rglob("*") if p.is_file()
            and not p.name.startswith("certgate.db")} == before


async def test_refuses_an_existing_config(tmp_path: Path) -> None:
    (tmp_path / "certgate.yaml").write_text("keep: me\n")
    with pytest.raises(ManageError, match="certgate.yaml already exists; refusing"):
        setup.refuse_existing(tmp_path)
    assert not (tmp_path / "ca").exists()


async def test_encrypted_ca_on_another_port(tmp_path: Path) -> None:
    request = SetupRequest(data_dir=tmp_path / "enc", hostnames=("gw.test", "192.0.2.7"),
                           pki_base_url=setup.pki_base_url("http://pki.gw.test:81/", "gw.test"),
                           passphrase=setup.check_ca_passphrase("a long ca passphrase"))
    made = await setup.create_data_dir(request, now=datetime.now(UTC))
    assert made.encrypted
    assert b"ENCRYPTED PRIVATE KEY" in (made.ca_dir / "issuing-key.pem").read_bytes()
    with pytest.raises(WrongPassphraseError):
        load_ca(made.ca_dir, None)
    load_ca(made.ca_dir, b"a long ca passphrase")
    config = load_config(made.config)
    assert config.pki.crl_url == "http://pki.gw.test:81/crl"
    assert str(config.pki_listen) == "0.0.0.0:81"


@pytest.mark.parametrize(("name", "ok"), [
    ("gw.example.test", True), ("127.0.0.1", True), ("::1", True), ("bad host!", False),
    ("", False)])
def test_is_host(name: str, ok: bool) -> None:
    assert setup.is_host(name) is ok


def test_pki_base_url_and_passphrase_checks() -> None:
    assert setup.pki_base_url(None, "gw.test") == "http://gw.test:8080"
    assert setup.pki_base_url("http://pki.test/", "gw.test") == "http://pki.test"
    with pytest.raises(ManageError, match="must be a plain http:// URL"):
        setup.pki_base_url("https://x", "gw.test")
    with pytest.raises(ManageError, match="the CA passphrase must have at least 12 characters"):
        setup.check_ca_passphrase("short")
