"""`certgate ca export-root` / `remove-root-key`: moving the root offline safely."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509

from tests.gateway.cli.conftest import Certgate


def test_export_then_remove_root_key(cg: Certgate, tmp_path: Path, p12_password_file: Path
                                     ) -> None:
    key = cg.data_dir / "ca" / "root-key.pem"
    refused = cg("ca", "remove-root-key", "--yes")
    assert (refused.code, refused.err.strip()) == (
        1, "certgate: export the root first with `certgate ca export-root --out FILE`")
    assert key.exists()
    out = tmp_path / "offline" / "root.pem"
    cg.ok("ca", "export-root", "--out", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(key.read_bytes())
    x509.load_pem_x509_certificate(out.read_bytes())
    again = cg("ca", "export-root", "--out", str(out))
    assert again.code == 1 and "already exists" in again.err
    cg.ok("ca", "remove-root-key", "--yes")
    assert not key.exists()
    # The online CA keeps working without the root key.
    cg.ok("user", "add", "alice")
    cg.ok("cert", "issue", "alice", "--out", str(tmp_path / "a.p12"), "--p12-password-file",
          str(p12_password_file))
    assert cg("ca", "remove-root-key", "--yes").code == 1
