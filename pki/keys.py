"""Private keys and the files that hold secrets.

Generates keys, serialises them (encrypted with a passphrase when one is given),
and reads/writes secret files so that they are never readable by group or others,
not even for an instant while being written.

Must not talk to a database or know about users; must not log key material.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

KeyType = Literal["ec-p256", "rsa3072"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class PkiError(Exception):
    """A PKI operation was refused; the message is one sentence for a person."""


class WrongPassphraseError(PkiError):
    """The passphrase for an encrypted key is missing or wrong."""


class InsecureFileError(PkiError):
    """A secret file is readable by group or others."""


def generate_key(key_type: KeyType = "ec-p256") -> PrivateKey:
    """A fresh private key: ECDSA P-256 (default) or RSA 3072."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise PkiError(f"unknown key type '{key_type}'; use ec-p256 or rsa3072")


def key_to_pem(key: PrivateKey, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase)
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def key_from_pem(data: bytes, passphrase: bytes | None) -> PrivateKey:
    """Load a PEM private key; refuse a wrong/missing passphrase with a clear error."""
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        # cryptography raises TypeError when the key is encrypted and no password was
        # given (or a password was given for an unencrypted key).
        if passphrase:
            return key_from_pem(data, None)
        raise WrongPassphraseError("the key is encrypted and no passphrase was given") from None
    except ValueError as exc:
        if b"ENCRYPTED" in data:
            raise WrongPassphraseError("the key passphrase is wrong") from None
        raise PkiError(f"the data is not a readable private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError("only ECDSA and RSA private keys are supported")
    return key


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600 from the start, so a secret is never exposed
    # between creation and chmod; os.replace makes the final write atomic.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_secret_file(path: Path, data: bytes) -> None:
    """Write ``data`` atomically to ``path`` with mode 0600."""
    _write_atomic(path, data, 0o600)


def write_public_file(path: Path, data: bytes) -> None:
    """Write ``data`` atomically to ``path`` with mode 0644 (certificates, CRLs)."""
    _write_atomic(path, data, 0o644)


def check_secret_mode(path: Path) -> None:
    """Refuse a secret file that group or others can read or write."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise PkiError(f"{path} does not exist") from None
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise InsecureFileError(
            f"{path} is readable by group or others (mode {mode:04o}); "
            f"run chmod 600 {path}"
        )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror}") from None


def read_secret_file(path: Path) -> bytes:
    """Read a secret file, refusing it when its mode lets group or others in."""
    check_secret_mode(path)
    return _read_bytes(path)


def read_secret_line(path: Path, *, private: bool = False) -> str:
    """The first line of a file holding a passphrase or password ("" when there is none).

    The one reader for every "file whose first line is the secret" option, so that
    a trailing newline or a comment line below never becomes part of the secret.
    ``private`` also refuses the file when group or others may read it (files the
    server reads unattended); the caller decides what an empty secret means.
    """
    data = read_secret_file(path) if private else _read_bytes(path)
    lines = data.decode("utf-8").splitlines()
    return lines[0] if lines else ""


def load_private_key_file(path: Path, passphrase: bytes | None) -> PrivateKey:
    """Read a 0600 key file and load the key from it."""
    return key_from_pem(read_secret_file(path), passphrase)


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 over the DER certificate: the gateway's identity key."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
