"""``certgate user …``: add, list, show, disable/enable, passwd, groups set.

Names, emails and groups are validated here; passwords are hashed with argon2id.
Changes reach running gateways through the store's event feed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from gateway.auth.passwords import WeakPasswordError, hash_password
from gateway.cli.common import (
    CliContext,
    CliError,
    echo_json,
    echo_table,
    read_secret_argument,
    run,
)
from gateway.store.records import UserRecord

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")


def check_name(kind: str, value: str) -> str:
    if not NAME_RE.match(value):
        raise CliError(f"'{value}' is not a valid {kind} name (lowercase letters, digits, "
                       "'.', '_' and '-', starting with a letter or digit, at most 64)")
    return value


def check_email(value: str | None) -> str | None:
    if value is not None and not EMAIL_RE.match(value):
        raise CliError(f"'{value}' is not an email address")
    return value


def _password(path: Path | None, interactive_prompt: bool) -> str | None:
    text = read_secret_argument(path, None, "Password" if interactive_prompt else None,
                                confirm=True)
    if text is None:
        return None
    try:
        return hash_password(text)
    except WeakPasswordError as exc:
        raise CliError(str(exc)) from None


def user_json(user: UserRecord) -> dict[str, Any]:
    return {"name": user.name, "email": user.email, "enabled": user.enabled,
            "groups": list(user.groups), "has_password": user.password_hash is not None,
            "created_at": user.created_at.isoformat()}


_EPILOG = """\b
EXAMPLES
  certgate user add alice --email alice@example.com --group staff --group pbx-admins
  certgate user list --json
  certgate user disable alice
  certgate user groups set alice staff
"""


@click.group("user", epilog=_EPILOG)
def user() -> None:
    """Manage the people who may hold certificates."""


@user.command("add")
@click.argument("name")
@click.option("--email", help="Email address, also written into certificates.")
@click.option("--group", "groups", multiple=True, help="Group membership (repeatable).")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File whose first line is the password for the second-factor login.")
@click.pass_obj
def add(obj: CliContext, name: str, email: str | None, groups: tuple[str, ...],
        password_file: Path | None) -> None:
    """Add a user."""
    check_name("user", name)
    check_email(email)
    for group in groups:
        check_name("group", group)
    password_hash = _password(password_file, False) if password_file else None

    async def go() -> UserRecord:
        async with obj.store() as store:
            return await store.add_user(name, email=email, groups=groups,
                                        password_hash=password_hash)

    added = run(go)
    click.echo(f"added user {added.name}" + (f" in {', '.join(added.groups)}"
                                              if added.groups else ""))


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(obj: CliContext, as_json: bool) -> None:
    """List users."""

    async def go() -> list[UserRecord]:
        async with obj.store() as store:
            return await store.list_users()

    users = run(go)
    if as_json:
        echo_json([user_json(u) for u in users])
        return
    echo_table(["NAME", "ENABLED", "EMAIL", "GROUPS"],
               [[u.name, "yes" if u.enabled else "no", u.email or "-",
                 ",".join(u.groups) or "-"] for u in users])


@user.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(obj: CliContext, name: str, as_json: bool) -> None:
    """Show a user and their certificates."""
    from gateway.cli.cert_cmd import cert_json

    async def go() -> tuple[UserRecord, list[Any]]:
        async with obj.store() as store:
            found = await store.get_user(name)
            return found, await store.list_certificates(user=name)

    found, certs = run(go)
    if as_json:
        echo_json({**user_json(found), "certificates": [cert_json(c) for c in certs]})
        return
    for key, value in user_json(found).items():
        click.echo(f"{key + ':':14s}{value}")
    click.echo("certificates:")
    for c in certs:
        click.echo(f"  {cert_json(c)['serial']}  {cert_json(c)['status']:10s} "
                   f"until {c.not_after:%Y-%m-%d}")


def _set_enabled(obj: CliContext, name: str, enabled: bool) -> None:
    async def go() -> UserRecord:
        async with obj.store() as store:
            return await store.set_user_enabled(name, enabled)

    run(go)
    click.echo(f"{'enabled' if enabled else 'disabled'} user {name}")


@user.command("disable")
@click.argument("name")
@click.pass_obj
def disable(obj: CliContext, name: str) -> None:
    """Disable a user: every certificate of theirs stops working at once."""
    _set_enabled(obj, name, False)


@user.command("enable")
@click.argument("name")
@click.pass_obj
def enable(obj: CliContext, name: str) -> None:
    """Enable a disabled user again."""
    _set_enabled(obj, name, True)


@user.command("passwd")
@click.argument("name")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File whose first line is the new password (else a prompt).")
@click.pass_obj
def passwd(obj: CliContext, name: str, password_file: Path | None) -> None:
    """Set a user's password for the second-factor login."""
    password_hash = _password(password_file, True)
    if password_hash is None:
        raise CliError("no password given: pass --password-file or run interactively")

    async def go() -> None:
        async with obj.store() as store:
            await store.set_password_hash(name, password_hash)

    run(go)
    click.echo(f"password set for {name}")


@user.group("groups")
def groups_() -> None:
    """Manage a user's groups."""


@groups_.command("set")
@click.argument("name")
@click.argument("groups", nargs=-1)
@click.pass_obj
def groups_set(obj: CliContext, name: str, groups: tuple[str, ...]) -> None:
    """Replace a user's groups (none given: remove all)."""
    for group in groups:
        check_name("group", group)

    async def go() -> UserRecord:
        async with obj.store() as store:
            return await store.set_user_groups(name, groups)

    updated = run(go)
    click.echo(f"{name} is in: {', '.join(updated.groups) or '(no groups)'}")
