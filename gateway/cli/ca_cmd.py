"""``certgate ca …``: move the root key offline.

The root key signs only the issuing CA, so day-to-day work never needs it. Export
it (still encrypted) with the root certificate to offline media, check the export,
then remove it from the gateway.
"""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509

from gateway.cli.common import CliContext, CliError
from pki.ca import ROOT_CERT, ROOT_KEY
from pki.keys import key_from_pem, read_secret_file, write_secret_file

EXPORT_MARKER = ".root-exported"

_EPILOG = """\b
EXAMPLES
  certgate ca export-root --out /media/usb/certgate-root.pem
  certgate ca remove-root-key
"""


@click.group("ca", epilog=_EPILOG)
def ca() -> None:
    """Look after the CA itself (offline root)."""


@ca.command("export-root")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File for the root key (as stored, encrypted) and root certificate.")
@click.pass_obj
def export_root(obj: CliContext, out: Path) -> None:
    """Write the root key and certificate to a file for offline storage."""
    ca_dir = obj.config.pki.ca_dir
    if not (ca_dir / ROOT_KEY).exists():
        raise CliError(f"{ca_dir / ROOT_KEY} is not here (already moved offline?)")
    if out.exists():
        raise CliError(f"{out} already exists; refusing to overwrite it")
    key_pem = read_secret_file(ca_dir / ROOT_KEY)
    cert_pem = (ca_dir / ROOT_CERT).read_bytes()
    write_secret_file(out, key_pem + cert_pem)
    # Read the export back: the cert must parse and (for unencrypted keys) match.
    x509.load_pem_x509_certificate(out.read_bytes())
    if b"ENCRYPTED" not in key_pem:
        key_from_pem(key_pem, None)
    write_secret_file(ca_dir / EXPORT_MARKER, str(out.resolve()).encode())
    click.echo(f"exported the root key and certificate to {out}")
    click.echo("store it offline, then run `certgate ca remove-root-key`")


@ca.command("remove-root-key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def remove_root_key(obj: CliContext, yes: bool) -> None:
    """Delete the root key from the gateway after `ca export-root`."""
    ca_dir = obj.config.pki.ca_dir
    key_path = ca_dir / ROOT_KEY
    if not key_path.exists():
        raise CliError(f"{key_path} is already gone")
    if not (ca_dir / EXPORT_MARKER).exists():
        raise CliError("export the root first with `certgate ca export-root --out FILE`")
    if not yes and not click.confirm(f"delete {key_path}?", default=False):
        raise CliError("nothing deleted")
    key_path.unlink()
    click.echo(f"deleted {key_path}; the issuing CA keeps working without it")
