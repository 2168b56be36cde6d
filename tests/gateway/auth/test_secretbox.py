"""Secrets at rest: sealed under the data dir's key, bound to their owner, 0600 key file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.auth.secretbox import SecretBox, SecretBoxError, create_key_file, load_secret_box
from pki.keys import InsecureFileError


def test_seal_open_and_binding(tmp_path: Path) -> None:
    key = tmp_path / "secrets.key"
    assert create_key_file(key) is True
    assert create_key_file(key) is False  # an existing key is never replaced
    assert key.stat().st_mode & 0o777 == 0o600
    box = load_secret_box(key)
    sealed = box.seal("JBSWY3DPEHPK3PXP", context="totp:alice")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert box.seal("JBSWY3DPEHPK3PXP", context="totp:alice") != sealed  # fresh nonce
    assert box.open(sealed, context="totp:alice") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretBoxError):
        box.open(sealed, context="totp:bob")  # copied into another user's row
    with pytest.raises(SecretBoxError):
        SecretBox(os.urandom(32)).open(sealed, context="totp:alice")  # another key
    tampered = sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB")
    with pytest.raises(SecretBoxError):
        box.open(tampered, context="totp:alice")
    with pytest.raises(SecretBoxError):
        box.open("plain-text", context="totp:alice")


def test_readable_key_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "secrets.key"
    create_key_file(key)
    key.chmod(0o644)
    with pytest.raises(InsecureFileError):
        load_secret_box(key)
