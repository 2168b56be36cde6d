"""``certgate ca …``: move the root key offline.

Parses, calls ``gateway.manage.root`` and prints; asks before deleting unless
``--yes``. The root key signs only the issuing CA, so day-to-day work never needs it.
"""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import CliContext, CliError
from gateway.manage import root

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
    root.export_root(obj.config.pki.ca_dir, out)
    click.echo(f"exported the root key and certificate to {out}")
    click.echo("store it offline, then run `certgate ca remove-root-key`")


@ca.command("remove-root-key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def remove_root_key(obj: CliContext, yes: bool) -> None:
    """Delete the root key from the gateway after `ca export-root`."""
    ca_dir = obj.config.pki.ca_dir
    key_path = root.removable_root_key(ca_dir)
    if not yes and not click.confirm(f"delete {key_path}?", default=False):
        raise CliError("nothing deleted")
    root.remove_root_key(ca_dir)
    click.echo(f"deleted {key_path}; the issuing CA keeps working without it")
