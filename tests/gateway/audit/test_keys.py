"""The audit key pair: made once (0600 private, public beside it), never overwritten;
the loaders refuse what they can't use in one sentence."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.audit.keys import (
    AuditKeyError,
    create_audit_key,
    load_audit_key,
    load_audit_public_key,
    public_pem,
)
from pki.keys import InsecureFileError


def test_the_pair_is_made_once_and_a_lost_public_half_is_rewritten(tmp_path: Path) -> None:
    private, public = tmp_path / "audit.key", tmp_path / "audit.pub"
    assert create_audit_key(private, public) is True
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    before = private.read_bytes()
    public.unlink()
    assert create_audit_key(private, public) is False  # an existing key is kept
    assert private.read_bytes() == before
    assert public.read_bytes() == public_pem(load_audit_key(private).public_key())
    assert public_pem(load_audit_public_key(public)) == public.read_bytes()


def test_loaders_refuse_in_one_sentence(tmp_path: Path) -> None:
    private, public = tmp_path / "audit.key", tmp_path / "audit.pub"
    create_audit_key(private, public)
    private.chmod(0o644)
    with pytest.raises(InsecureFileError, match="chmod 600"):
        load_audit_key(private)
    with pytest.raises(AuditKeyError, match="no audit public key at .*certgate init"):
        load_audit_public_key(tmp_path / "none.pub")
    public.write_text("not a key")
    with pytest.raises(AuditKeyError, match="is not a PEM public key"):
        load_audit_public_key(public)
