"""``certgate init``: a new data directory with CA, server certificate, keys, config, database.

Parses and checks the options, gets the CA passphrase (file, environment or
prompt), calls ``gateway.manage.setup.create_data_dir`` and prints the next steps.
With ``--database-url`` the database is PostgreSQL from the start; one that is
unreachable or already holds an install is refused before the passphrase prompt.
On an existing install (the directory holds a config) it overwrites nothing: it
adds the keys a newer version needs that are missing (``setup.KEY_FILES``) and says
which, or refuses when none is missing.
"""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import CliError, now, read_secret_argument, run, warn
from gateway.config import HostPort, is_node_name, load_config
from gateway.manage import setup
from gateway.manage.errors import ManageError
from gateway.manage.setup import CONFIG_NAME, DataDir, SetupRequest
from pki.keys import KeyType

_EPILOG = """\b
EXAMPLES
  certgate init --data-dir /var/lib/certgate --hostname gw.example.com
  certgate init --data-dir ./gw --hostname gw.example.com --hostname 203.0.113.7 \\
      --ca-name "Example Corp" --ca-passphrase-file /root/ca-pass --key-type rsa3072
  certgate init --data-dir /var/lib/certgate     # an existing install: add missing keys
  certgate init --data-dir /srv/certgate --hostname gw.example.com --node gw1 \\
      --database-url postgresql+asyncpg://certgate:PASSWORD@db.example.com/certgate
  # a second node: copy the first one's data directory and set `node:` (docs/deploy.md)
"""


@click.command("init", epilog=_EPILOG)
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to create (CA, keys, config, database).")
@click.option("--hostname", "hostnames", multiple=True,
              help="Public name of the gateway (repeatable); the first names the CRL/OCSP URLs. "
                   "Required for a new data directory.")
@click.option("--ca-name", default="certgate", show_default=True,
              help="Organisation name used in the CA certificates.")
@click.option("--key-type", type=click.Choice(["ec-p256", "rsa3072"]), default="ec-p256",
              show_default=True, help="Key type for the CA and server certificate.")
@click.option("--ca-passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File whose first line encrypts the CA keys "
                   "(else $CERTGATE_CA_PASSPHRASE, else a prompt).")
@click.option("--no-ca-passphrase", is_flag=True,
              help="Store the CA keys unencrypted (0600 files). Not for production.")
@click.option("--listen", default="0.0.0.0:8443", show_default=True,
              help="Public TLS listener written to the config.")
@click.option("--pki-url", default=None,
              help="Base URL of the CRL/OCSP listener (default http://HOSTNAME:8080).")
@click.option("--database-url", default=None,
              help="A new, empty PostgreSQL database (postgresql+asyncpg://...) for several "
                   "nodes; written to the config. Default: SQLite in the data directory. "
                   "A database that already holds an install is refused.")
@click.option("--node", default=None,
              help="This gateway's name in the audit trail, written to the config with "
                   "--database-url (default: the host name).")
def init(data_dir: Path, hostnames: tuple[str, ...], ca_name: str, key_type: KeyType,
         ca_passphrase_file: Path | None, no_ca_passphrase: bool, listen: str,
         pki_url: str | None, database_url: str | None, node: str | None) -> None:
    """Create a CA, the gateway's certificate and keys, a config and a database.

    On an existing install, add the keys it lacks (such as the secrets key that seals
    TOTP secrets) and change nothing else.
    """
    resolved = data_dir.expanduser().resolve()
    if setup.is_installed(resolved):
        _complete(resolved)
        return
    if not hostnames:
        raise click.UsageError("Missing option '--hostname': a new data directory needs the "
                               "gateway's public name")
    for name in hostnames:
        if not setup.is_host(name):
            raise click.BadParameter(f"'{name}' is not a hostname or IP address",
                                     param_hint="--hostname")
    try:
        HostPort.parse_text(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    try:
        base = setup.pki_base_url(pki_url, hostnames[0])
    except ManageError as exc:
        raise click.BadParameter(str(exc), param_hint="--pki-url") from None
    if database_url is not None:
        try:
            setup.check_database_url(database_url)
        except ManageError as exc:
            raise click.BadParameter(str(exc), param_hint="--database-url") from None
    if node is not None and not is_node_name(node):
        raise click.BadParameter(f"'{node}' is not a node name (1-60 letters, digits, '.', "
                                 "'_' or '-', starting with a letter or digit)",
                                 param_hint="--node")
    if node is not None and database_url is None:
        raise click.UsageError("--node names one of several nodes sharing a database: "
                               "give --database-url too")
    if ca_passphrase_file and no_ca_passphrase:
        raise click.UsageError("--ca-passphrase-file and --no-ca-passphrase exclude each other")
    data_dir = resolved
    setup.refuse_existing(data_dir)
    if database_url is not None:  # before the passphrase prompt: refusing later wastes it
        url = database_url
        run(lambda: setup.refuse_installed_database(url))

    passphrase: bytes | None = None
    if no_ca_passphrase:
        warn("the CA keys will be stored WITHOUT a passphrase; anyone who can read "
             f"{data_dir / 'ca'} can issue certificates. Use this only for demos and tests.")
    else:
        text = read_secret_argument(ca_passphrase_file, "CERTGATE_CA_PASSPHRASE",
                                    "CA key passphrase", confirm=True)
        if not text:
            raise CliError("the CA key needs a passphrase: pass --ca-passphrase-file, set "
                           "CERTGATE_CA_PASSPHRASE, or use --no-ca-passphrase for a demo")
        passphrase = setup.check_ca_passphrase(text)

    request = SetupRequest(data_dir=data_dir, hostnames=hostnames, pki_base_url=base,
                           ca_name=ca_name, key_type=key_type, passphrase=passphrase,
                           listen=listen, database_url=database_url, node=node)

    async def go() -> DataDir:
        return await setup.create_data_dir(request, now=now())

    made = run(go)
    click.echo(f"created {made.path}")
    click.echo(f"  CA            {made.ca_dir} (root + issuing CA, keys "
               f"{'encrypted' if made.encrypted else 'NOT encrypted'})")
    click.echo(f"  server cert   {made.server_cert} for {', '.join(hostnames)}")
    click.echo(f"  config        {made.config}")
    config = load_config(made.config)
    for key in setup.KEY_FILES:
        click.echo(f"  {key.name:<13} {key.path(config)} ({key.purpose})")
    click.echo(f"  database      {made.database}")
    click.echo("next steps:")
    click.echo(f"  export CERTGATE_CONFIG={made.path / CONFIG_NAME}")
    click.echo("  certgate user add alice --email alice@example.com --group staff")
    click.echo("  certgate cert issue alice --out alice.p12")
    click.echo("  move ca/root-key.pem offline: see `certgate ca export-root --help`")


def _complete(data_dir: Path) -> None:
    """An existing install: add the missing keys, touch nothing else, say what happened."""
    added = setup.complete_data_dir(data_dir)
    if not added:
        names = ", ".join(key.name for key in setup.KEY_FILES)
        raise CliError(f"{data_dir} is already set up and has every key init makes ({names}); "
                       "nothing was changed: init never overwrites an existing install")
    click.echo(f"{data_dir} is already set up; init overwrites nothing there. "
               "Added what was missing:")
    for item in added:
        click.echo(f"  {item.key.name:<13} {item.path} (0600; {item.key.purpose})")
    click.echo("Everything else (config, CA, certificates, other keys, database) is as it was.")
