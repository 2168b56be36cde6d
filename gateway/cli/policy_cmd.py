"""``certgate policy check`` and ``certgate policy explain``.

``explain`` judges a hypothetical request with the running config's policies; for
the second factor it takes the user's last TOTP from their newest live session in
the store, or from ``--last-totp`` for what-if questions.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import click

from gateway.cli.common import CliContext, CliError, echo_json, run
from gateway.config import ConfigError, load_config
from gateway.http.paths import STRICT, AmbiguousPathError, judged_path, normalise_path
from gateway.http.routing import path_rules_for
from gateway.manage.factors import last_totp_at
from policies.durations import parse_duration
from policies.engine import evaluate
from policies.explain import decision_to_json, explain_lines
from policies.model import AccessRequest

_EXPLAIN_EXAMPLES = """\
  certgate policy explain --user alice --url https://pbx.example.com/admin/config.php
  certgate policy explain --user bob --url https://wiki.example.com/ --method POST \\
      --source-ip 198.51.100.7 --at 2026-11-28T21:00:00+01:00 --json
  certgate policy explain --user carol --url https://pbx.example.com/admin --last-totp 22m
  certgate policy explain --user carol --url https://pbx.example.com/admin --last-totp never
"""
_EPILOG = ("\b\nEXAMPLES\n  certgate policy check\n"
           "  certgate policy check /etc/certgate/new-certgate.yaml\n" + _EXPLAIN_EXAMPLES)
_EXPLAIN_EPILOG = "\b\nEXAMPLES\n" + _EXPLAIN_EXAMPLES


def _last_totp_age(text: str) -> timedelta | None:
    """``--last-totp``: an age such as ``22m``, or ``never`` (None)."""
    if text.strip().lower() == "never":
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}, or 'never'", param_hint="--last-totp") from None


@click.group("policy", epilog=_EPILOG)
def policy() -> None:
    """Validate the config's policies and explain decisions."""


@policy.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def check(obj: CliContext, file: Path | None) -> None:
    """Validate a config file without starting anything (default: the current config)."""
    path = file or obj.config_path
    try:
        config = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise CliError(f"{path} has {len(exc.issues)} problem(s); nothing was changed") \
            from None
    click.echo(f"{path}: OK ({len(config.apps)} app(s))")


@policy.command("explain", epilog=_EXPLAIN_EPILOG)
@click.option("--user", required=True, help="The user as the gateway would identify them.")
@click.option("--url", required=True, help="https://HOST/PATH?QUERY")
@click.option("--method", default="GET", show_default=True)
@click.option("--source-ip", default="127.0.0.1", show_default=True)
@click.option("--at", "at", help="ISO 8601 time (default: now).")
@click.option("--last-totp", "last_totp", metavar="AGE|never",
              help="How long ago the user last gave a TOTP code (e.g. 22m), or 'never' "
                   "(default: from their newest live session in the database).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def explain(obj: CliContext, user: str, url: str, method: str, source_ip: str, at: str | None,
            last_totp: str | None, as_json: bool) -> None:
    """Show the decision, reason and rule for a hypothetical request, and what the
    second factor needs and what the user has."""
    totp_age = _last_totp_age(last_totp) if last_totp is not None else None
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise click.BadParameter("must be an https:// URL with a host", param_hint="--url")
    config = obj.config
    app = next((a for a in config.apps if a.host == parts.hostname.lower()), None)
    try:
        path = judged_path(normalise_path(
            parts.path or "/", path_rules_for(app) if app else STRICT))
    except AmbiguousPathError as exc:
        raise CliError(f"the gateway refuses this path with 400: {exc}") from None
    try:
        ip = ipaddress.ip_address(source_ip)
    except ValueError:
        raise click.BadParameter(f"'{source_ip}' is not an IP address",
                                 param_hint="--source-ip") from None
    try:
        when = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError:
        raise click.BadParameter(f"'{at}' is not an ISO 8601 time", param_hint="--at") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)

    async def lookup() -> tuple[tuple[str, ...], datetime | None]:
        async with obj.store() as store:
            groups = (await store.get_user(user)).groups
            if last_totp is not None:  # a what-if question: the store's sessions don't count
                return groups, None if totp_age is None else when - totp_age
            return groups, await last_totp_at(store, user, at=when,
                                              idle=config.auth.session_idle,
                                              absolute=config.auth.session_absolute)

    groups, mfa_at = run(lookup)
    request = AccessRequest(host=parts.hostname.lower(), method=method.upper(), path=path,
                            user=user, groups=frozenset(groups), source_ip=ip, now=when,
                            mfa_at=mfa_at)
    decision = evaluate(config.policy_set, request)
    if as_json:
        echo_json(decision_to_json(request, decision, config.policy_set))
    else:
        for line in explain_lines(request, decision, config.policy_set):
            click.echo(line)
