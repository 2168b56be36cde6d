"""Getting at the online CA key: where its passphrase comes from, and loading it.

The passphrase comes from ``pki.ca_passphrase_file`` (a 0600 file), else the
``CERTGATE_CA_PASSPHRASE`` environment variable, else (for interactive CLI use)
a prompt. Used by the CLI and by the server's CRL re-signing.

Must not log or print the passphrase.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from gateway.config import Config
from pki.ca import ISSUING_KEY, CertificateAuthority, load_ca
from pki.keys import PkiError, read_secret_line

PASSPHRASE_ENV = "CERTGATE_CA_PASSPHRASE"

CaLoader = Callable[[], CertificateAuthority]
"""How a use-case gets the online CA: called only when it is needed, so a
passphrase prompt comes after the cheap refusals (unknown user, ...), and a
revocation can still succeed when the key cannot be unlocked."""


def key_is_encrypted(path: Path) -> bool:
    try:
        return b"ENCRYPTED" in path.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror}") from None


def ca_passphrase(config: Config, environ: Mapping[str, str],
                  prompt: Callable[[], str] | None = None) -> bytes | None:
    """The passphrase for the CA key, or None when the key is not encrypted.

    Raises ``PkiError`` with what to do when the key is encrypted and no source
    of the passphrase is available.
    """
    if not key_is_encrypted(config.pki.ca_dir / ISSUING_KEY):
        return None
    if config.pki.ca_passphrase_file is not None:
        line = read_secret_line(config.pki.ca_passphrase_file, private=True)
        if not line:
            raise PkiError(f"{config.pki.ca_passphrase_file} is empty")
        return line.encode("utf-8")
    if environ.get(PASSPHRASE_ENV):
        return environ[PASSPHRASE_ENV].encode("utf-8")
    if prompt is not None:
        return prompt().encode("utf-8")
    raise PkiError(
        "the CA key is encrypted and no passphrase is available; set "
        f"{PASSPHRASE_ENV} or pki.ca_passphrase_file"
    )


def load_online_ca(config: Config, environ: Mapping[str, str] | None = None,
                   prompt: Callable[[], str] | None = None) -> CertificateAuthority:
    """Load the issuing CA from ``pki.ca_dir``, unlocking its key as ``ca_passphrase`` says."""
    env = os.environ if environ is None else environ
    return load_ca(config.pki.ca_dir, ca_passphrase(config, env, prompt))
