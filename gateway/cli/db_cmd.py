"""``certgate db``: apply migrations, move an install to another database."""

from __future__ import annotations

import click

from gateway.cli.common import CliContext, CliError, echo_json, echo_table, run
from gateway.manage import database
from gateway.store.db import safe_url

_EPILOG = """\b
EXAMPLES
  certgate db upgrade
  systemctl stop certgate
  certgate db move-to postgresql+asyncpg://certgate@db.example.com/certgate
  systemctl start certgate
"""


@click.group("db", epilog=_EPILOG)
def db() -> None:
    """The database: migrations, and moving to PostgreSQL."""


@db.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def upgrade(obj: CliContext, as_json: bool) -> None:
    """Apply the schema migrations now (`serve` also applies them at start)."""
    url = obj.config.database_url
    revision = run(lambda: database.upgrade(url))
    if as_json:
        echo_json({"database": safe_url(url), "revision": revision})
    else:
        click.echo(f"{safe_url(url)} is at schema revision {revision}")


@db.command("move-to")
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def move_to(obj: CliContext, url: str, as_json: bool) -> None:
    """Copy everything into the new, empty database URL, verify it, and point the
    config at it. Stop the gateway first; the old database is left as it was."""
    source = obj.config.database_url
    if "://" not in url:
        raise CliError(f"'{url}' is not a database URL (postgresql+asyncpg://USER@HOST/NAME)")
    copied = run(lambda: database.move_to(source, url))
    database.point_config(obj.config_path, url)
    if as_json:
        echo_json({"from": safe_url(source), "to": safe_url(url), "verified": True,
                   "tables": {c.name: c.rows for c in copied}})
        return
    echo_table(["table", "rows"], [(c.name, c.rows) for c in copied if c.rows])
    click.echo(f"copied and verified (row counts and SHA-256 per table); "
               f"{obj.config_path} now uses {safe_url(url)}")
    click.echo(f"the old database ({safe_url(source)}) is unchanged; keep it as a backup "
               "until the gateway runs well on the new one")
