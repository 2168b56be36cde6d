"""``certgate audit``: check the audit trail (``verify``); search, export and report follow."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.audit.keys import load_audit_public_key
from gateway.audit.verify import NodeResult
from gateway.cli.common import CliContext, echo_json, now, run, warn
from gateway.manage.audit import Verification, parse_since, verify_audit

_EPILOG = """\b
EXAMPLES
  certgate audit verify
  certgate audit verify --since 30d
  certgate audit verify --json > verification.json
  certgate audit verify --public-key /media/usb/audit.pub --checkpoints /media/usb/checkpoints.jsonl

\b
EXIT CODES
  0  every node's chain and every checkpoint verify
  1  a record was edited, removed, inserted or reordered, the tail was cut, a
     checkpoint does not verify, or the check could not run (the reason is printed)
"""


@click.group("audit")
def audit() -> None:
    """The audit trail: prove that no record was changed, removed or added."""


@audit.command("verify", epilog=_EPILOG)
@click.option("--since", help="Check from this moment on: 24h, 30d or an ISO date/time "
                              "(default: every record since the first).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--public-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The audit public key (default: audit.pub beside audit.key in the config).")
@click.option("--checkpoints", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The checkpoint file kept outside the database "
                   "(default: audit.checkpoints in the config).")
@click.pass_obj
def verify(obj: CliContext, since: str | None, as_json: bool, public_key: Path | None,
           checkpoint_file: Path | None) -> None:
    """Check every node's hash chain and its signed checkpoints.

    Reports, per node, how many records verify, or the first broken record and what
    is wrong with it: edited, removed, inserted, reordered, a cut tail, a checkpoint
    that does not verify.
    """
    obj.read_only = True  # a reviewer may run this as a user who can't write the data dir
    config = obj.config
    moment = parse_since(since, now()) if since else None
    key_path = public_key or config.audit.public_key
    key = None
    if public_key is not None or key_path.exists():
        key = load_audit_public_key(key_path)
    elif not as_json:
        warn(f"no audit public key at {key_path}: checkpoint signatures are not checked, so "
             "a cut tail can't be detected (pass --public-key)")
    checkpoints = checkpoint_file or config.audit.checkpoints

    async def go() -> Verification:
        async with obj.store() as store:
            return await verify_audit(store, public_key=key, checkpoint_file=checkpoints,
                                      since=moment)

    result = run(go)
    if as_json:
        echo_json({"ok": result.ok, "since": moment.isoformat() if moment else None,
                   "public_key": str(key_path) if key else None,
                   "checkpoint_file": str(checkpoints),
                   "nodes": [node.to_json() for node in result.nodes]})
    else:
        _print(result, key is not None)
    if not result.ok:
        raise click.exceptions.Exit(1)


def _print(result: Verification, signed: bool) -> None:
    if not result.nodes:
        click.echo("no audit records yet: nothing to verify")
        return
    for node in result.nodes:
        click.echo(_line(node, signed))
        for problem in node.breaks:
            click.echo(f"  seq {problem.seq}: {problem.kind}: {problem.message}")
        for note in node.notes:
            click.echo(f"  note: {note}")
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
