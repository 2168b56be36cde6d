"""Keys and secret files: encryption, modes, refusals."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pki.keys import (
    InsecureFileError,
    PkiError,
    WrongPassphraseError,
    generate_key,
    key_from_pem,
    key_to_pem,
    load_private_key_file,
    read_secret_file,
    read_secret_line,
    write_public_file,
    write_secret_file,
)


@pytest.mark.parametrize(("key_type", "cls"), [("ec-p256", ec.EllipticCurvePrivateKey),
                                                ("rsa3072", rsa.RSAPrivateKey)])
def test_generate_and_round_trip(key_type: str, cls: type) -> None:
    key = generate_key(key_type)  # type: ignore[arg-type]
    assert isinstance(key, cls)
    pem = key_to_pem(key, b"secret passphrase")
    assert b"ENCRYPTED" in pem
    assert key_from_pem(pem, b"secret passphrase").public_key() == key.public_key()


@pytest.mark.parametrize(("passphrase", "error"), [
    (None, WrongPassphraseError),
    (b"wrong", WrongPassphraseError),
])
def test_encrypted_key_needs_the_right_passphrase(passphrase: bytes | None, error: type) -> None:
    pem = key_to_pem(generate_key(), b"right")
    with pytest.raises(error):
        key_from_pem(pem, passphrase)


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(PkiError, match="not a readable private key"):
        key_from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None)
    with pytest.raises(PkiError, match="unknown key type"):
        generate_key("dsa")  # type: ignore[arg-type]


def test_secret_file_is_0600_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "key.pem"
    old_umask = os.umask(0o000)  # even a permissive umask must not widen the mode
    try:
        write_secret_file(path, b"secret")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_secret_file(path) == b"secret"
    assert [p.name for p in path.parent.iterdir()] == ["key.pem"]  # no temp file left behind
    write_public_file(tmp_path / "cert.pem", b"cert")
    assert stat.S_IMODE((tmp_path / "cert.pem").stat().st_mode) == 0o644


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_readable_secret_files_are_refused_with_a_hint(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(key_to_pem(generate_key(), None))
    path.chmod(mode)
    with pytest.raises(InsecureFileError, match=f"chmod 600 {path}"):
        read_secret_file(path)
    with pytest.raises(InsecureFileError):
        load_private_key_file(path, None)


def test_missing_secret_file(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="does not exist"):
        read_secret_file(tmp_path / "missing.pem")


@pytest.mark.parametrize(("text", "line"), [
    ("correct horse\n", "correct horse"), ("no newline", "no newline"),
    ("first\nsecond\n", "first"), ("crlf\r\nnext", "crlf"), ("", ""), ("\nsecond", "")])
def test_read_secret_line_is_the_first_line(tmp_path: Path, text: str, line: str) -> None:
    path = tmp_path / "secret"
    path.write_text(text)
    assert read_secret_line(path) == line
    path.chmod(0o600)
    assert read_secret_line(path, private=True) == line


def test_read_secret_line_refusals(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("pass phrase\n")
    path.chmod(0o644)
    assert read_secret_line(path) == "pass phrase"  # an option's file: any mode
    with pytest.raises(InsecureFileError, match=f"chmod 600 {path}"):
        read_secret_line(path, private=True)  # read unattended by the server: 0600 only
    with pytest.raises(PkiError, match=f"cannot read {tmp_path / 'missing'}: No such file"):
        read_secret_line(tmp_path / "missing")
    with pytest.raises(PkiError, match="does not exist"):
        read_secret_line(tmp_path / "missing", private=True)
