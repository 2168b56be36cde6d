"""``certgate audit export``: the records and the signed checkpoints that cover them,
as one file a reviewer can take away and check offline (``audit verify --bundle``).

Parses, calls ``gateway.manage.audit_export``, prints. Must not write files itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.cli.common import CliContext, echo_json, exit_if_unrecorded, now, run

if TYPE_CHECKING:  # the rest is imported in the command: `audit export --help` stays quick
    from gateway.manage.audit_export import Export, Format

_EPILOG = """\b
EXAMPLES
  certgate audit export --format jsonl --since 2026-10-01 --until 2026-11-01 --out oct.jsonl
  certgate audit export --format csv --since 90d --out review.csv
  certgate audit verify --bundle oct.jsonl --public-key audit.pub

\b
jsonl: one file, every record with its chain fields and the signed checkpoints.
csv:   FILE holds the records for a spreadsheet; FILE.bundle.jsonl the header,
       checkpoints and digests that `verify --bundle` needs: hand over both.
Each node's stretch is widened back to the signed checkpoint at or before --since (or
to its first record) and on to the one after --until (when there is one already), so
every exported record is tied to a signature or to the start of its chain.
"""


@click.command("export", epilog=_EPILOG)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True,
              help="jsonl (one self-describing file) or csv (for spreadsheets, plus "
                   "FILE.bundle.jsonl).")
@click.option("--since", help="Records from this moment on: 24h, 30d or an ISO date/time.")
@click.option("--until", help="Records before this moment: 24h, 30d or an ISO date/time.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write (refused if it exists, unless --force).")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_obj
def export(obj: CliContext, fmt: Format, since: str | None, until: str | None, out: Path,
           force: bool, as_json: bool) -> None:
    """Write the audit records with their hashes and the signed checkpoints that
    cover them, for verification without the database (`audit verify --bundle`)."""
    from gateway.manage.audit import parse_since
    from gateway.manage.audit_export import export_audit
    from gateway.manage.errors import ManageError
    from gateway.manage.trail import record_read

    moment = now()
    start = parse_since(since, moment) if since else None
    end = parse_since(until, moment, "--until") if until else None
    if start is not None and end is not None and end <= start:
        raise ManageError("--until is not after --since: nothing to export")
    config = obj.config

    async def go() -> tuple[Export, str | None]:
        async with obj.store() as store:
            done = await export_audit(store, out=out, fmt=fmt, since=start, until=end,
                                      checkpoint_file=config.audit.checkpoints, now=moment,
                                      force=force)
            return done, await record_read(
                store, config, "export",
                {"format": fmt, "since": since, "until": until, "out": str(out),
                 "records": done.records})

    result, unrecorded = run(go)
    if as_json:
        echo_json({"files": [str(f) for f in result.files], "records": result.records,
                   "checkpoints": result.checkpoints, "nodes": result.nodes})
        exit_if_unrecorded(unrecorded)
        return
    for node in result.nodes:
        click.echo(f"node {node['node']}: seq {node['first_seq']}-{node['last_seq']}")
    files = " and ".join(map(str, result.files))
    click.echo(f"exported {result.records} record(s) of {len(result.nodes)} node(s) and "
               f"{result.checkpoints} signed checkpoint(s) to {files}")
    exit_if_unrecorded(unrecorded)
