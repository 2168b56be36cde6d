"""``certgate cert issue-server``: the gateway's own TLS certificate from its CA.

Parses, calls ``gateway.manage.servers``, records the issue on the admin chain, prints.
"""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import CliContext, ca_loader, now, run
from gateway.manage import servers
from gateway.manage.setup import SERVER_CERT_DAYS
from gateway.store.db import serial_hex


@click.command("issue-server")
@click.argument("names", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("server.pem"), show_default=True,
              help="PEM file for the certificate followed by the issuing CA (tls.cert).")
@click.option("--key-out", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM file for its key, 0600 (default: OUT's name with -key, as tls.key).")
@click.option("--key-type", type=click.Choice(["ec-p256", "rsa3072"]), default="ec-p256",
              show_default=True)
@click.option("--days", type=click.IntRange(1, 397), default=SERVER_CERT_DAYS,
              show_default=True, help="Validity in days (browsers accept at most 397).")
@click.pass_obj
def issue_server(obj: CliContext, names: tuple[str, ...], out: Path, key_out: Path | None,
                 key_type: str, days: int) -> None:
    """Issue the gateway's TLS certificate for NAMES (hostnames or IP addresses).

    Point tls.cert and tls.key at the new files (or move them over tls/server.pem
    and tls/server-key.pem): a running gateway serves them to new connections
    within a minute, or at once on `systemctl reload certgate` (SIGHUP).
    """
    made = servers.issue_server_certificate(
        ca_loader(obj.config), names, out=out, key_out=key_out or servers.key_path_for(out),
        key_type=key_type, days=days, now=now())  # type: ignore[arg-type]

    async def record() -> None:
        async with obj.admin() as (_, trail):
            await trail.record("cert.issue", "issued", serial=serial_hex(made.serial), detail={
                "kind": "server", "names": list(made.names),
                "not_after": made.not_after.isoformat()})

    try:
        run(record)
    except Exception as exc:  # the database is away: the files stand, say it after them
        obj.unrecorded.append(f"the audit record cert.issue could not be written: {exc}")
    click.echo(f"issued server certificate {serial_hex(made.serial)} for {', '.join(made.names)}, "
               f"valid until {made.not_after:%Y-%m-%d}")
    click.echo(f"  certificate: {made.cert_path}")
    click.echo(f"  key:         {made.key_path}")
    click.echo("  point tls.cert and tls.key at them (or move them into place); the gateway "
               "takes them up within a minute, or at once on reload (SIGHUP)")
