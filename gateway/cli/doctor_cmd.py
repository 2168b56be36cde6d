"""``certgate doctor``: check an install; print each finding with its fix."""

from __future__ import annotations

import click

from gateway.cli.common import CliContext, echo_json, now, run
from gateway.ops.doctor import Finding, Status, exit_code, run_doctor, worst

_EPILOG = """\b
CHECKS
  config valid; key files 0600 and owned by the service user; root CA, issuing CA,
  server certificate and OCSP signer expiry (warn 30 days before); the server
  certificate names every app host; when the gateway renews it; database reachable
  and migrated; clock skew against the database (warn over 5 s); CRL nextUpdate;
  CRL/OCSP URLs in issued certificates match the config; the newest audit record of
  each node links; the audit spool is empty; every upstream answers (TCP, and TLS for
  https), all at once with --timeout each.

\b
EXAMPLES
  certgate doctor
  certgate --config /var/lib/certgate/certgate.yaml doctor --service-user certgate
  certgate doctor --json | jq '.findings[] | select(.status != "pass")'

\b
EXIT CODES
  0  every check passed
  1  at worst a warning (something to fix soon)
  2  at least one failure (something is broken now), or a usage error
"""

_LABEL = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL"}


def _print(findings: list[Finding]) -> None:
    width = max(len(f.check) for f in findings)
    for finding in findings:
        lines = finding.message.splitlines() or [""]
        click.echo(f"{_LABEL[finding.status]}  {finding.check.ljust(width)}  {lines[0]}")
        for line in lines[1:]:
            click.echo(f"{'':6}{'':{width}}  {line}")
        if finding.fix:
            click.echo(f"{'':6}{'':{width}}  fix: {finding.fix}")
    counts = {status: sum(1 for f in findings if f.status == status) for status in Status}
    click.echo(f"{counts[Status.PASS]} passed, {counts[Status.WARN]} warning(s), "
               f"{counts[Status.FAIL]} failure(s)")


@click.command("doctor", epilog=_EPILOG)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--service-user", metavar="NAME",
              help="The user certgate runs as, who must own the key files (default: the "
                   "owner of the data directory).")
@click.option("--timeout", type=click.FloatRange(0.1, 60.0), default=3.0, show_default=True,
              help="Seconds to wait for the database and for each upstream.")
@click.pass_obj
def doctor(obj: CliContext, as_json: bool, service_user: str | None, timeout: float) -> None:
    """Check this install and say how to fix each problem found."""
    findings = run(lambda: run_doctor(obj.config_path, now=now(), service_user=service_user,
                                      within=timeout))
    code = exit_code(findings)
    if as_json:
        echo_json({"status": str(worst(findings)), "exit_code": code,
                   "findings": [f.as_json() for f in findings]})
    else:
        _print(findings)
    if code:
        raise click.exceptions.Exit(code)
