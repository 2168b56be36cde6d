"""``certgate audit``: check the trail (``verify``, also of an exported bundle, offline),
find records (``search``), hand them over (``export``), write the access review
(``report``). Parses, calls ``manage``, prints."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.cli.audit_export_cmd import export
from gateway.cli.audit_search_cmd import search
from gateway.cli.common import (
    CliContext,
    CliError,
    echo_json,
    exit_if_unrecorded,
    now,
    run,
    warn,
)

if TYPE_CHECKING:  # the rest is imported in the commands: `certgate audit --help` stays quick
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from gateway.audit.bundle_check import BundleResult
    from gateway.audit.report import ReportData
    from gateway.audit.verify import NodeResult
    from gateway.config import Config
    from gateway.manage.audit import Verification

_EPILOG = """\b
EXAMPLES
  certgate audit verify
  certgate audit verify --since 30d
  certgate audit verify --json > verification.json
  certgate audit verify --public-key /media/usb/audit.pub --checkpoints /media/usb/checkpoints.jsonl
  certgate audit verify --bundle audit-2026-q4.jsonl --public-key audit.pub   # no config needed
  certgate audit verify --bundle audit-2026-q4.csv --public-key audit.pub   # + its .bundle.jsonl

\b
EXIT CODES
  0  every node's chain and every checkpoint verify
  1  a record was edited, removed, inserted or reordered, the tail was cut, a
     checkpoint does not verify, a bundle was changed, or the check could not run
  2  a usage error (such as --bundle without --public-key)

Every run is itself recorded (type audit.read, with the OS user and the scope) on
the admin chain <node>.cli. When that record can't be written (a read-only copy of
the database, a user who may only read it) the check still runs and its exit code
is still the verdict: a warning on stderr says the run went unrecorded, and --json
has "read_recorded": false with the reason in "read_record_problem".
"""


_REPORT_EPILOG = """\b
EXAMPLES
  certgate audit report --out access-review.html
  certgate audit report --since 90d --out q3-review.html
  certgate audit report --since 2026-10-01 --until 2026-11-01 --out october.html
  certgate audit report --out review.html --public-key /media/usb/audit.pub --force

\b
EXIT CODES
  0  the report was written and the audit log verifies
  1  the audit log does NOT verify (the report is still written, with FAILED on
     its first screen), or the report could not be made (the reason is printed)
"""


_AUDIT_EPILOG = """\b
EXAMPLES
  certgate audit verify
  certgate audit search --user alice --since 30d
  certgate audit export --format jsonl --since 90d --out review.jsonl
  certgate audit verify --bundle review.jsonl --public-key audit.pub
  certgate audit report --since 90d --out access-review.html

  docs/reviewer-guide.md explains each for a reviewer.
"""


@click.group("audit", epilog=_AUDIT_EPILOG)
def audit() -> None:
    """The audit trail: search it, export it, prove that no record was changed,
    removed or added, and write the access review for a reviewer."""


audit.add_command(search)
audit.add_command(export)


def _public_key(config: Config, public_key: Path | None, quiet: bool
                ) -> tuple[Ed25519PublicKey | None, Path]:
    """The key given, else ``audit.pub`` beside the configured audit key when it exists."""
    from gateway.audit.keys import load_audit_public_key

    key_path = public_key or config.audit.public_key
    if public_key is not None or key_path.exists():
        return load_audit_public_key(key_path), key_path
    if not quiet:
        warn(f"no audit public key at {key_path}: checkpoint signatures are not checked, so "
             "a cut tail can't be detected (pass --public-key)")
    return None, key_path


@audit.command("verify", epilog=_EPILOG)
@click.option("--since", help="Check from this moment on: 24h, 30d or an ISO date/time "
                              "(default: every record since the first).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--public-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The audit public key (default: audit.pub beside audit.key in the config).")
@click.option("--checkpoints", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The checkpoint file kept outside the database "
                   "(default: audit.checkpoints in the config).")
@click.option("--bundle", type=click.Path(dir_okay=False, path_type=Path),
              help="Check a file made by `audit export` instead of the database: needs only "
                   "--public-key, no config file.")
@click.pass_obj
def verify(obj: CliContext, since: str | None, as_json: bool, public_key: Path | None,
           checkpoint_file: Path | None, bundle: Path | None) -> None:
    """Check every node's hash chain and its signed checkpoints.

    Reports, per node, how many records verify, or the first broken record and what
    is wrong with it: edited, removed, inserted, reordered, a cut tail, a checkpoint
    that does not verify. With --bundle, the same for an exported file, offline.
    """
    from gateway.audit.keys import load_audit_public_key
    from gateway.manage.audit import parse_since, verify_audit
    from gateway.manage.trail import record_read

    if bundle is not None:
        if since or checkpoint_file:
            raise click.UsageError("--bundle checks the exported file as it is: --since and "
                                   "--checkpoints do not apply")
        if public_key is None:
            raise click.UsageError("--bundle needs --public-key: the audit.pub of the gateway "
                                   "that exported it")
        _verify_bundle(bundle, load_audit_public_key(public_key), public_key, as_json)
        return
    obj.read_only = True  # a reviewer may run this as a user who can't write the data dir
    config = obj.config
    moment = parse_since(since, now()) if since else None
    key, key_path = _public_key(config, public_key, as_json)
    checkpoints = checkpoint_file or config.audit.checkpoints

    async def go() -> tuple[Verification, str | None]:
        async with obj.store() as store:
            result = await verify_audit(store, public_key=key, checkpoint_file=checkpoints,
                                        since=moment)
            # Who read the trail, with what scope: recorded after the check.
            return result, await record_read(
                store, config, "verify",
                {"since": moment.isoformat() if moment else None,
                 "public_key": str(key_path) if key else None,
                 "checkpoint_file": str(checkpoints), "ok": result.ok,
                 "nodes": len(result.nodes)})

    result, unrecorded = run(go)
    if as_json:
        echo_json({"ok": result.ok, "since": moment.isoformat() if moment else None,
                   "public_key": str(key_path) if key else None,
                   "checkpoint_file": str(checkpoints),
                   "nodes": [node.to_json() for node in result.nodes],
                   "read_recorded": unrecorded is None, "read_record_problem": unrecorded})
    else:
        _print(result, key is not None)
    if unrecorded is not None:
        # The verdict above stands (it is the exit code): a reviewer checking a
        # read-only copy must not see a failure the chain does not have.
        warn(f"the check ran and its result stands, but {unrecorded}; this run is not "
             "in the audit trail")
    if not result.ok:
        raise click.exceptions.Exit(1)


@audit.command("report", epilog=_REPORT_EPILOG)
@click.option("--since", default="30d", show_default=True,
              help="Start of the period: 30d, 24h or an ISO date/time.")
@click.option("--until", help="End of the period (not included): a duration before now or an "
                              "ISO date/time (default: now).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--public-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The audit public key (default: audit.pub beside audit.key in the config).")
@click.option("--checkpoints", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The checkpoint file kept outside the database "
                   "(default: audit.checkpoints in the config).")
@click.pass_obj
def report(obj: CliContext, since: str, until: str | None, out: Path, force: bool,
           public_key: Path | None, checkpoint_file: Path | None) -> None:
    """Write the access review: one HTML file a reviewer opens in any browser.

    Its first screen says whether the whole audit log verifies (as `audit verify`
    does); then who can reach which application under today's policy, who actually
    did, refused requests by reason, sign-ins and lockouts, certificates issued,
    revoked, suspended and expiring, and the changes administrators made in the
    period. Self-contained: no script, nothing fetched from anywhere.
    """
    from gateway.audit.report import render_report
    from gateway.manage.audit import parse_since
    from gateway.manage.errors import ManageError
    from gateway.manage.report import gather_report, write_report
    from gateway.manage.trail import record_read

    config = obj.config
    moment = now()
    start = parse_since(since, moment)
    try:
        end = parse_since(until, moment) if until else moment
    except ManageError:
        raise CliError(f"--until '{until}' is neither a duration before now (24h, 30d) nor an "
                       "ISO date or time (2026-11-01, 2026-11-01T08:00Z)") from None
    if not force and out.exists():
        raise CliError(f"{out} already exists; pass --force to replace it")
    key, key_path = _public_key(config, public_key, False)

    async def go() -> tuple[ReportData, str | None]:
        async with obj.store() as store:
            gathered = await gather_report(
                store, config, since=start, until=end, now=moment, generated_by=_who(),
                public_key=key, public_key_path=key_path,
                checkpoint_file=checkpoint_file or config.audit.checkpoints)
            return gathered, await record_read(
                store, config, "report",
                {"since": start.isoformat(), "until": end.isoformat(), "out": str(out),
                 "verified": gathered.verdict.state})

    data, unrecorded = run(go)
    write_report(out, render_report(data), force=force)
    state = data.verdict.state
    verdict = {"ok": "the audit log verifies", "failed": "the audit log does NOT verify",
               "unsigned": "the audit log links up, signatures not checked (no public key)",
               "empty": "the audit log is empty"}[state]
    click.echo(f"wrote {out}: {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC; {verdict}")
    exit_if_unrecorded(unrecorded)
    if state == "failed":
        raise click.exceptions.Exit(1)


def _who() -> str:
    from gateway.audit.events import os_user

    return f"{os_user() or 'an unnamed user'} on {socket.gethostname()}"


def _print_node(node: NodeResult, signed: bool) -> None:
    """One node's verdict line, then its breaks and notes."""
    click.echo(_line(node, signed))
    for problem in node.breaks:
        click.echo(f"  seq {problem.seq}: {problem.kind}: {problem.message}")
    for note in node.notes:
        click.echo(f"  note: {note}")


def _print(result: Verification, signed: bool) -> None:
    if not result.nodes:
        click.echo("no audit records yet: nothing to verify")
        return
    for node in result.nodes:
        _print_node(node, signed)
    broken = [n.node for n in result.nodes if not n.ok]
    scope = f" since {result.since.isoformat()}" if result.since else ""
    if broken:
        click.echo(f"audit verify{scope}: FAILED for {len(broken)} of {len(result.nodes)} "
                   f"node(s): {', '.join(broken)}")
    else:
        click.echo(f"audit verify{scope}: OK, {sum(n.records for n in result.nodes)} record(s) "
                   f"on {len(result.nodes)} node(s)")


def _line(node: NodeResult, signed: bool) -> str:
    span = f"seq {node.first_seq}-{node.last_seq}" if node.records else "no records"
    checked = f", {node.checkpoints} signed checkpoint(s) match" if signed else ""
    if node.ok:
        return f"node {node.node}: OK, {node.records} record(s) ({span}){checked}"
    first = node.breaks[0]
    return (f"node {node.node}: BROKEN at seq {first.seq} ({first.kind}); "
            f"{node.records} record(s) read ({span})")


def _verify_bundle(path: Path, key: Ed25519PublicKey, key_path: Path, as_json: bool) -> None:
    from gateway.manage.audit_export import verify_bundle

    result, files = verify_bundle(path, key)
    if as_json:
        echo_json({**result.to_json(), "files": [str(f) for f in files],
                   "public_key": str(key_path)})
    else:
        _print_bundle(result, files)
    if not result.ok:
        raise click.exceptions.Exit(1)


def _print_bundle(result: BundleResult, files: list[Path]) -> None:
    header = result.header or {}
    scope = header.get("scope") or {}
    click.echo(f"bundle {', '.join(str(f) for f in files)}: exported "
               f"{header.get('exported_at', '?')} by {header.get('exported_by') or '?'} on "
               f"{header.get('exported_on') or '?'}; records from "
               f"{scope.get('since') or 'the start'} until {scope.get('until') or 'the export'}")
    for node in result.nodes:
        _print_node(node, True)
    for message in result.problems:
        click.echo(f"  problem: {message}")
    if result.ok:
        click.echo(f"audit verify --bundle: OK, {sum(n.records for n in result.nodes)} "
                   f"record(s) on {len(result.nodes)} node(s)")
    else:
        broken = [n.node for n in result.nodes if not n.ok]
        where = f" for node(s) {', '.join(broken)}" if broken else ""
        click.echo(f"audit verify --bundle: FAILED{where}"
                   + (f" ({len(result.problems)} problem(s) with the file itself)"
                      if result.problems else ""))
