"""Moving the root key offline: export (as stored, 0600), check, then remove."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from gateway.manage import root
from gateway.manage.errors import ManageError
from pki.ca import ROOT_KEY, build_ca, load_ca, save_ca


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    ca, root_key = build_ca("Example Corp", now=datetime.now(UTC))
    save_ca(tmp_path / "ca", ca, root_key, b"a long ca passphrase")
    return tmp_path / "ca"


def test_export_then_remove(ca_dir: Path, tmp_path: Path) -> None:
    key = ca_dir / ROOT_KEY
    with pytest.raises(ManageError, match="export the root first"):
        root.remove_root_key(ca_dir)
    out = root.export_root(ca_dir, tmp_path / "offline" / "root.pem")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(key.read_bytes())  # still encrypted, as stored
    assert b"ENCRYPTED PRIVATE KEY" in out.read_bytes()
    x509.load_pem_x509_certificate(out.read_bytes())
    with pytest.raises(ManageError, match="already exists; refusing to overwrite it"):
        root.export_root(ca_dir, out)
    assert root.removable_root_key(ca_dir) == key
    assert root.remove_root_key(ca_dir) == key
    assert not key.exists()
    load_ca(ca_dir, b"a long ca passphrase")  # the issuing CA works without the root key
    with pytest.raises(ManageError, match="is already gone"):
        root.remove_root_key(ca_dir)
    with pytest.raises(ManageError, match="already moved offline"):
        root.export_root(ca_dir, tmp_path / "again.pem")
