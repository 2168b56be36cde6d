"""Moving the root key offline: export it (still encrypted) with the root certificate,
check the export, then remove it from the gateway.

The root signs only the issuing CA, so day-to-day work never needs it. Removing
is refused until an export was made. Never prompts or prints (the CLI asks for
confirmation); refuses with ``ManageError``. Must not decrypt or log the key.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from gateway.manage.errors import ManageError
from pki.ca import ROOT_CERT, ROOT_KEY
from pki.keys import key_from_pem, read_secret_file, write_secret_file

EXPORT_MARKER = ".root-exported"


def export_root(ca_dir: Path, out: Path) -> Path:
    """Write the root key (as stored) and certificate to ``out`` (0600); return ``out``."""
    if not (ca_dir / ROOT_KEY).exists():
        raise ManageError(f"{ca_dir / ROOT_KEY} is not here (already moved offline?)")
    if out.exists():
        raise ManageError(f"{out} already exists; refusing to overwrite it")
    key_pem = read_secret_file(ca_dir / ROOT_KEY)
    cert_pem = (ca_dir / ROOT_CERT).read_bytes()
    write_secret_file(out, key_pem + cert_pem)
    # Read the export back: the cert must parse and (for unencrypted keys) match.
    x509.load_pem_x509_certificate(out.read_bytes())
    if b"ENCRYPTED" not in key_pem:
        key_from_pem(key_pem, None)
    write_secret_file(ca_dir / EXPORT_MARKER, str(out.resolve()).encode())
    return out


def removable_root_key(ca_dir: Path) -> Path:
    """The root key file, when it is still here and has been exported."""
    key_path = ca_dir / ROOT_KEY
    if not key_path.exists():
        raise ManageError(f"{key_path} is already gone")
    if not (ca_dir / EXPORT_MARKER).exists():
        raise ManageError("export the root first with `certgate ca export-root --out FILE`")
    return key_path


def remove_root_key(ca_dir: Path) -> Path:
    """Delete the exported root key from the gateway; return the path deleted."""
    key_path = removable_root_key(ca_dir)
    key_path.unlink()
    return key_path
