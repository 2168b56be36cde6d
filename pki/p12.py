"""PKCS#12 bundles: a user's key, certificate and CA chain in one password-protected file.

Two profiles: ``modern`` (PBES2 with AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC)
and ``compat`` (3DES with a SHA-1 MAC) for macOS Keychain and older Windows imports.

Pure: returns bytes. Must not write files or print the password.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12

from pki.keys import PkiError, PrivateKey

P12Profile = Literal["modern", "compat"]

# No 0/O, 1/l/I: the password is read off a screen and typed into an import dialog.
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_GROUPS, _GROUP_LEN = 4, 5  # 20 symbols of log2(57) ~ 5.83 bits: ~117 bits


def generate_p12_password() -> str:
    """A strong, typeable password such as ``k7Qzp-Wm3xa-...`` (about 117 bits)."""
    return "-".join(
        "".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_LEN)) for _ in range(_GROUPS)
    )


def build_p12(
    key: PrivateKey,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    *,
    password: bytes,
    profile: P12Profile = "modern",
    friendly_name: str,
) -> bytes:
    """Serialise key + certificate + chain as PKCS#12 under ``password``."""
    if not password:
        raise PkiError("a PKCS#12 file needs a password")
    if profile == "modern":
        encryption = (
            PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(100_000)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(password)
        )
    elif profile == "compat":
        encryption = (
            PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(2048)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())  # noqa: S303 - required by the targets of this profile
            .build(password)
        )
    else:
        raise PkiError(f"unknown PKCS#12 profile '{profile}'; use modern or compat")
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode("utf-8"), key, cert, list(chain), encryption
    )
