"""``certgate audit search``: find records by user, app, decision, type, certificate,
reference and time; a table for a person, ``--json`` for a script.

Parses, calls ``gateway.manage.audit_search``, prints. Must not build queries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gateway.audit.query import DECISIONS, MAX_LIMIT
from gateway.cli.common import (
    CliContext,
    echo_json,
    echo_table,
    exit_if_unrecorded,
    now,
    run,
    warn,
)

if TYPE_CHECKING:  # the rest is imported in the command: `audit search --help` stays quick
    from gateway.manage.audit_search import SearchResult

_EPILOG = """\b
EXAMPLES
  certgate audit search --user alice --since 30d
  certgate audit search --decision deny --since 24h
  certgate audit search --cert 5F:3A:01:9C --since 2026-10-01 --until 2026-11-01
  certgate audit search --ref 3f2a9c01b7de
  certgate audit search --app pbx --type access --limit 1000 --json > pbx.json

\b
Times are UTC. --since and --until take a duration back from now (24h, 30d) or an
ISO date or time (2026-11-01, 2026-11-01T08:00Z); --until is exclusive.
"""

_COLUMNS = ("time (UTC)", "node", "type", "user", "app", "decision", "reason", "path", "ref")
_PATH_WIDTH = 48


def _safe(value: Any, width: int = 200) -> str | None:
    """A cell a terminal shows as it is: a client-controlled path can't move the
    cursor or recolour the screen (control characters written as ``\\xNN``)."""
    if value is None:
        return None
    text = str(value)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= width else text[:width - 1] + "…"


def _row(record: dict[str, Any]) -> list[Any]:
    at = str(record["at"])
    return [f"{at[:10]} {at[11:23]}", *(_safe(record[name]) for name in (
        "node", "type", "user", "app", "decision", "reason")),
        _safe(record["path"], _PATH_WIDTH), _safe(record["reference"])]


@click.command("search", epilog=_EPILOG)
@click.option("--user", help="Records of this user.")
@click.option("--app", help="Records of this app (its name in the config).")
@click.option("--decision", type=click.Choice(DECISIONS), help="allow, deny, error or info.")
@click.option("--type", "type_", metavar="TYPE",
              help="Record type: access, login, session.end, gateway.start …")
@click.option("--cert", metavar="SERIAL",
              help="Records made with this certificate: its serial as `cert list` prints it "
                   "(hex, colons allowed).")
@click.option("--ref", metavar="REF", help="The reference shown on a refusal page.")
@click.option("--since", help="From this moment on: 24h, 30d or an ISO date/time.")
@click.option("--until", help="Before this moment: 24h, 30d or an ISO date/time.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=100, show_default=True,
              help="Show at most this many records.")
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list, one object per record with every field.")
@click.pass_obj
def search(obj: CliContext, user: str | None, app: str | None, decision: str | None,
           type_: str | None, cert: str | None, ref: str | None, since: str | None,
           until: str | None, limit: int, oldest_first: bool, as_json: bool) -> None:
    """Find audit records, newest first: who reached what, when, with which certificate.

    Filters combine (all must match). Without --since every record since the first
    is searched.
    """
    from gateway.manage.audit_search import build_query, search_audit
    from gateway.manage.trail import record_read

    query = build_query(now=now(), user=user, app=app, decision=decision, type_=type_,
                        cert=cert, ref=ref, since=since, until=until, limit=limit,
                        oldest_first=oldest_first)

    config = obj.config

    async def go() -> tuple[SearchResult, str | None]:
        async with obj.store() as store:
            found = await search_audit(store, query)
            filters = {"user": user, "app": app, "decision": decision, "type": type_,
                       "cert": cert, "ref": ref, "since": since, "until": until}
            return found, await record_read(
                store, config, "search",
                {"filters": {k: v for k, v in filters.items() if v is not None},
                 "records": len(found.records)})

    result, unrecorded = run(go)
    if as_json:
        echo_json(result.records)
    elif not result.records:
        click.echo("no audit records match")
    else:
        echo_table(_COLUMNS, [_row(record) for record in result.records])
    if result.more:
        warn(f"only the {'oldest' if oldest_first else 'newest'} {limit} matching records "
             "are shown: narrow the search or raise --limit")
    exit_if_unrecorded(unrecorded)
