"""``certgate user …``: add, list, show, disable/enable, email, passwd,
password-reset, groups set.

Parses arguments, calls ``gateway.manage.users`` (which validates names, emails,
groups and passwords) and prints. Changes reach running gateways through the
store's event feed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.common import (
    CliContext,
    CliError,
    echo_json,
    echo_table,
    now,
    read_secret_argument,
    run,
)

if TYPE_CHECKING:  # the rest is imported in the commands: `certgate user --help` stays quick
    from gateway.manage import resets
    from gateway.manage.factors import AuthenticatorState
    from gateway.store.records import UserRecord


def user_json(user: UserRecord) -> dict[str, Any]:
    return {"name": user.name, "email": user.email, "enabled": user.enabled,
            "groups": list(user.groups), "has_password": user.password_hash is not None,
            "created_at": user.created_at.isoformat()}


def pending_message(name: str) -> str:
    """What the admin tells the person once their authenticator is left to them."""
    return (f"{name} will set up the authenticator app on their phone themselves. Next time "
            f"{name} opens an application that asks for a code, the sign-in page asks only "
            "for the password, then shows a QR code to scan with the phone and asks for the "
            "first 6-digit code; after that it shows 10 recovery codes to write down. "
            f"Tell {name} to have their phone ready.")


_TOTP_WORDS = {"active": "active", "none": "none",
               "pending": "pending (the person sets it up at their next sign-in)"}


_EPILOG = """\b
EXAMPLES
  certgate user add alice --email alice@example.com --group staff --group pbx-admins
  certgate user add bob --group staff --password-file bob.pw --totp pending
  certgate user list --json
  certgate user disable alice
  certgate user email alice alice.smith@example.com
  certgate user email bob --clear
  certgate user password-reset bob
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
@click.option("--totp", type=click.Choice(["none", "pending"]), default="none",
              show_default=True,
              help="pending: the user sets up their authenticator app themselves at their "
                   "first sign-in (certificate and password). Or later: "
                   "`certgate user totp-enroll`.")
@click.pass_obj
def add(obj: CliContext, name: str, email: str | None, groups: tuple[str, ...],
        password_file: Path | None, totp: str) -> None:
    """Add a user."""
    from gateway.manage import factors, users

    # Refuse bad arguments before the database is opened (and perhaps migrated).
    users.check_new_user(name, email, groups)
    password = read_secret_argument(password_file, None, None) if password_file else None
    if password is not None:
        users.check_password(password)

    async def go() -> UserRecord:
        async with obj.admin() as (store, trail):
            added = await users.add_user(store, name, email=email, groups=groups,
                                         password=password)
            await trail.record("user.add", "added", user=added.name, detail={
                "email": added.email, "groups": list(added.groups),
                "password": password is not None})
            if totp == "pending":
                await factors.mark_totp_pending(store, obj.config, name)
                await trail.record("totp.pending", "pending", user=name)
            return added

    added = run(go)
    click.echo(f"added user {added.name}" + (f" in {', '.join(added.groups)}"
                                              if added.groups else ""))
    if totp == "pending":
        click.echo(pending_message(name))
        if password is None:
            click.echo(f"{name} has no password yet: set one with "
                       f"`certgate user passwd {name}` before they sign in.")


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
    """Show a user, their authenticator (TOTP active, pending or none; recovery codes
    left; whether sign-in is locked, until when) and their certificates."""
    from gateway.cli.cert_cmd import cert_json
    from gateway.manage import factors

    async def go() -> tuple[UserRecord, list[Any], AuthenticatorState, Any]:
        async with obj.store() as store:
            found = await store.get_user(name)
            return (found, await store.list_certificates(user=name),
                    await factors.authenticator_state(store, name, now=now()),
                    await store.open_password_reset(name, now()))

    found, certs, factor, reset = run(go)
    locked = factor.locked_until.isoformat() if factor.locked_until else None
    reset_until = reset.expires_at.isoformat() if reset is not None else None
    if as_json:
        echo_json({**user_json(found), "totp": factor.totp,
                   "recovery_codes_left": factor.recovery_codes_left, "locked_until": locked,
                   "password_reset_until": reset_until,
                   "certificates": [cert_json(c) for c in certs]})
        return
    for key, value in user_json(found).items():
        click.echo(f"{key + ':':14s}{value}")
    click.echo(f"{'totp:':14s}{_TOTP_WORDS[factor.totp]}")
    click.echo(f"{'recovery:':14s}{factor.recovery_codes_left} codes left")
    click.echo(f"{'locked:':14s}" + (
        f"until {factor.locked_until:%Y-%m-%d %H:%M} UTC (certgate user unlock {name})"
        if factor.locked_until else "no"))
    if reset is not None:
        click.echo(f"{'reset open:':14s}until {reset.expires_at:%Y-%m-%d %H:%M} UTC "
                   f"(set by {reset.created_by})")
    click.echo("certificates:")
    for c in certs:
        click.echo(f"  {cert_json(c)['serial']}  {cert_json(c)['status']:10s} "
                   f"until {c.not_after:%Y-%m-%d}")


def _set_enabled(obj: CliContext, name: str, enabled: bool) -> None:
    from gateway.manage import users

    async def go() -> UserRecord:
        async with obj.admin() as (store, trail):
            changed = await users.set_user_enabled(store, name, enabled)
            await trail.record("user.enable" if enabled else "user.disable",
                               "enabled" if enabled else "disabled", user=changed.name)
            return changed

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


@user.command("email")
@click.argument("name")
@click.argument("address", required=False)
@click.option("--clear", is_flag=True, help="Remove the user's e-mail address.")
@click.pass_obj
def email(obj: CliContext, name: str, address: str | None, clear: bool) -> None:
    """Set or change a user's e-mail address (or remove it with --clear).

    The console's hand-over page e-mails a certificate's download link to this
    address, and it is written into the certificates issued from now on; those
    already issued keep the address they were signed with.
    """
    from gateway.manage import users

    if clear == (address is not None):
        raise click.UsageError("give either an ADDRESS or --clear")
    users.check_email(address)

    async def go() -> tuple[str | None, UserRecord]:
        async with obj.admin() as (store, trail):
            before = (await store.get_user(name)).email
            updated = await users.set_email(store, name, address)
            await trail.record("user.email", "email cleared" if clear else "email set",
                               user=updated.name,
                               detail={"before": before, "after": updated.email})
            return before, updated

    before, updated = run(go)
    if updated.email is None:
        click.echo(f"{name} has no e-mail address now" + (f" (was {before})" if before else ""))
    else:
        click.echo(f"e-mail of {name} is {updated.email}" + (
            f" (was {before})" if before and before != updated.email else ""))


def reset_message(reset: resets.PasswordReset) -> str:
    """What the admin reads out to the person, said once."""
    name = reset.user
    return (f"Set-up code for {name}: {reset.code}\n"
            f"It works once, until {reset.expires_at:%Y-%m-%d %H:%M} UTC. Tell it to {name} "
            "by phone (not by email or chat, where it stays). With their certificate, "
            f"{name} opens any application that asks for a password, types this code and "
            "chooses a new password. Their old password no longer works and their "
            "sessions have ended.")


@user.command("password-reset")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the code included).")
@click.pass_obj
def password_reset(obj: CliContext, name: str, as_json: bool) -> None:
    """Let a user choose a new password with a one-time set-up code.

    Prints the code once; it works for 24 hours. The user's current password stops
    working now and their sessions end (a reset is for a password that may be known).
    A new reset replaces an earlier code.
    """
    from gateway.manage import resets

    async def go() -> resets.PasswordReset:
        async with obj.admin() as (store, trail):
            reset = await resets.start_password_reset(store, name, now(),
                                                      created_by=trail.actor or "cli")
            await trail.record("password.reset", "set", user=reset.user, detail={
                "expires_at": reset.expires_at.isoformat(),
                "sessions_ended": reset.sessions_ended})
            return reset

    reset = run(go)
    if as_json:
        echo_json({"user": reset.user, "code": reset.code,
                   "expires_at": reset.expires_at.isoformat(),
                   "sessions_ended": reset.sessions_ended})
        return
    click.echo(reset_message(reset))


@user.command("passwd")
@click.argument("name")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File whose first line is the new password (else a prompt).")
@click.pass_obj
def passwd(obj: CliContext, name: str, password_file: Path | None) -> None:
    """Set a user's password for the second-factor login."""
    from gateway.manage import users

    password = read_secret_argument(password_file, None, "Password", confirm=True)
    if password is None:
        raise CliError("no password given: pass --password-file or run interactively")
    users.check_password(password)

    async def go() -> None:
        async with obj.admin() as (store, trail):
            await users.set_password(store, name, password)
            await trail.record("user.password", "password set", user=name)

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
    from gateway.manage import users

    users.check_groups(groups)

    async def go() -> UserRecord:
        async with obj.admin() as (store, trail):
            before = (await store.get_user(name)).groups
            updated = await users.set_groups(store, name, groups)
            await trail.record("user.groups", "groups set", user=updated.name, detail={
                "before": list(before), "after": list(updated.groups)})
            return updated

    updated = run(go)
    click.echo(f"{name} is in: {', '.join(updated.groups) or '(no groups)'}")
