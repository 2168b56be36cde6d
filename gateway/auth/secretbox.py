"""Secrets at rest (TOTP seeds): AES-256-GCM under a key file in the data directory.

Each sealed value is bound to what it belongs to (``context``, e.g. ``"totp:alice"``)
as associated data, so a value copied into another user's row does not open. The
key file is 32 random bytes, 0600, created by ``certgate init``; a key file that
group or others can read is refused.

Must not log plaintexts or the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pki.keys import read_secret_file, write_secret_file

KEY_FILE = "secrets.key"
_PREFIX = "v1:"
_NONCE = 12


class SecretBoxError(ValueError):
    """A sealed value could not be opened: wrong key, wrong context or tampered."""


class SecretBox:
    """Seal and open short secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the secrets key must be 32 bytes")
        self._aead = AESGCM(key)
        self._key = key

    def derived_key(self, purpose: str) -> bytes:
        """A key for another use (e.g. CSRF tokens), the same on every node."""
        return hmac.new(self._key, purpose.encode("utf-8"), hashlib.sha256).digest()

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, *, context: str) -> str:
        if not token.startswith(_PREFIX):
            raise SecretBoxError("not a sealed value of this version")
        try:
            raw = base64.urlsafe_b64decode(token[len(_PREFIX):])
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise SecretBoxError("the sealed value does not open with this key") from None
        return plain.decode("utf-8")


def create_key_file(path: Path) -> bool:
    """Write a new random key to ``path`` (0600) unless one is there; True if created."""
    if path.exists():
        return False
    write_secret_file(path, AESGCM.generate_key(bit_length=256))
    return True


def load_secret_box(path: Path) -> SecretBox:
    """The box for the key at ``path``; refuses a key file others can read."""
    return SecretBox(read_secret_file(path))
