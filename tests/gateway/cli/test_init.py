"""`certgate init`: what it creates, what it refuses, and that refusals change nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.config import load_config
from pki.ca import load_ca
from pki.keys import WrongPassphraseError
from tests.gateway.cli.conftest import Certgate

SECRETS = ["ca/root-key.pem", "ca/issuing-key.pem", "ca/ocsp-key.pem", "tls/server-key.pem",
           "keys/assertion-es256.pem", "secrets.key", "certgate.yaml", "certgate.db"]


def test_init_creates_everything_with_safe_modes(cg: Certgate) -> None:
    for rel in SECRETS:
        assert stat.S_IMODE((cg.data_dir / rel).stat().st_mode) == 0o600, rel
    assert stat.S_IMODE(cg.data_dir.stat().st_mode) == 0o700
    config = load_config(cg.config)
    assert config.public_hostnames == ("gw.example.test", "127.0.0.1")
    assert config.pki.crl_url == "http://gw.example.test:8080/crl"
    assert config.apps == ()
    assert [p.name for p in cg.data_dir.iterdir() if p.name.startswith(".")] == []


def test_init_refuses_to_overwrite_and_changes_nothing(cg: Certgate) -> None:
    before = {p: p.read_bytes() for p in cg.data_dir.rglob("*") if p.is_file()}
    result = cg("init", "--data-dir", str(cg.data_dir), "--hostname", "x.test",
                "--no-ca-passphrase", config=False)
    assert result.code == 1
    assert result.err.strip() == (
        f"certgate: {cg.data_dir} is already set up and has every key init makes (secrets "
        "key, audit key); nothing was changed: init never overwrites an existing install")
    assert {p: p.read_bytes() for p in cg.data_dir.rglob("*") if p.is_file()} == before


def test_init_refuses_a_ca_without_a_config(cg: Certgate) -> None:
    cg.config.unlink()
    before = {p: p.read_bytes() for p in cg.data_dir.rglob("*") if p.is_file()}
    result = cg("init", "--data-dir", str(cg.data_dir), "--hostname", "x.test",
                "--no-ca-passphrase", config=False)
    assert result.code == 1
    assert result.err.strip() == (f"certgate: a CA already exists in {cg.data_dir / 'ca'}; "
                                  "refusing to overwrite it")
    assert {p: p.read_bytes() for p in cg.data_dir.rglob("*") if p.is_file()} == before


def test_ca_key_is_encrypted_with_the_passphrase_file(tmp_path: Path, cg: Certgate) -> None:
    secret = tmp_path / "ca-pass"
    secret.write_text("a long ca passphrase\n")
    target = tmp_path / "enc"
    result = cg("init", "--data-dir", str(target), "--hostname", "gw.test",
                "--ca-passphrase-file", str(secret), config=False)
    assert result.code == 0, result.err
    assert b"ENCRYPTED PRIVATE KEY" in (target / "ca" / "issuing-key.pem").read_bytes()
    with pytest.raises(WrongPassphraseError):
        load_ca(target / "ca", None)
    load_ca(target / "ca", b"a long ca passphrase")


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--hostname", "bad host!"], 2, "'bad host!' is not a hostname"),
    (["--hostname", "gw.test", "--listen", "nope"], 2, "not an address"),
    (["--hostname", "gw.test", "--pki-url", "https://x"], 2, "plain http:// URL"),
    (["--hostname", "gw.test", "--no-ca-passphrase", "--ca-passphrase-file", "x"], 2,
     "exclude each other"),
    (["--hostname", "gw.test"], 1, "the CA key needs a passphrase"),
    ([], 2, "Missing option '--hostname'"),
])
def test_init_usage_errors(tmp_path: Path, cg: Certgate, args: list[str], code: int,
                           message: str) -> None:
    target = tmp_path / "new"
    result = cg("init", "--data-dir", str(target), *args, config=False)
    assert result.code == code
    assert message in result.err
    assert not (target / "ca").exists()


def test_short_passphrase_refused(tmp_path: Path, cg: Certgate) -> None:
    secret = tmp_path / "short"
    secret.write_text("short\n")
    result = cg("init", "--data-dir", str(tmp_path / "n"), "--hostname", "gw.test",
                "--ca-passphrase-file", str(secret), config=False)
    assert (result.code, result.err.strip()) == (
        1, "certgate: the CA passphrase must have at least 12 characters")
