"""``certgate crl``: publish a new CRL (or print the current one) as DER or PEM."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.cli.common import CliContext, CliError, ca_loader, now, run
from gateway.manage.crl import CrlNote, crl_number, publish_crl
from pki.keys import write_public_file

_EPILOG = """\b
EXAMPLES
  certgate crl --out /var/www/pki/certgate.crl
  certgate crl --force --out /var/www/pki/certgate.crl   # republish, e.g. from cron
  certgate crl --pem | openssl crl -noout -text
  certgate crl --current --out current.crl
"""


@click.command("crl", epilog=_EPILOG)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the CRL to this file (default: standard output); an existing "
                   "file is refused unless --force.")
@click.option("--force", is_flag=True, help="Replace the file --out names if it exists.")
@click.option("--pem", is_flag=True, help="PEM instead of DER.")
@click.option("--current", is_flag=True,
              help="Do not sign a new CRL; output the latest published one.")
@click.pass_obj
def crl(obj: CliContext, out: Path | None, pem: bool, current: bool, force: bool) -> None:
    """Sign and publish a fresh CRL (number and thisUpdate always increase)."""
    config = obj.config
    if out is not None and out.exists() and not force:
        # Before signing: a refused write must not use up a CRL number.
        raise CliError(f"{out} already exists; refusing to overwrite it (add --force to "
                       "replace it)")

    async def go() -> bytes:
        async with obj.admin() as (store, trail):
            if current:
                latest = await store.latest_crl()
                if latest is None:
                    raise CliError("no CRL has been published yet; run `certgate crl`")
                return latest[3]
            signed = await publish_crl(store, ca_loader(config)(),
                                       validity=config.pki.crl_validity, now=now())
            await trail.crl(CrlNote(crl_number(signed)))
            return signed.public_bytes(Encoding.DER)

    der = run(go)
    data = x509.load_der_x509_crl(der).public_bytes(Encoding.PEM) if pem else der
    if out is None:
        if not pem and sys.stdout.isatty():
            raise CliError("refusing to print binary DER to a terminal; use --out or --pem")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    write_public_file(out, data)
    click.echo(f"wrote CRL number {crl_number(x509.load_der_x509_crl(der))} to {out}", err=True)
