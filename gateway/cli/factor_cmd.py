"""``certgate user totp-enroll|totp-reset [--pending]|recovery-codes|unlock`` and
``certgate session …``.

Parses arguments, calls ``gateway.manage.factors`` and prints. The TOTP secret and
the recovery codes are printed once, for the admin to hand over; they are never
shown again (a new enrollment or a new set replaces them).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.common import CliContext, echo_json, echo_table, now, run
from gateway.cli.user_cmd import pending_message, user

if TYPE_CHECKING:  # the rest is imported in the commands: `certgate user --help` stays quick
    from gateway.manage import factors
    from gateway.store.records import SessionRecord

_SESSION_EPILOG = """\b
EXAMPLES
  certgate session list
  certgate session list --user alice --json
  certgate session kill 3f9c2a1b7d4e5f60
  certgate session kill --user alice
"""


def _qr_for_terminal(uri: str) -> str:
    import segno

    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


@user.command("totp-enroll")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (secret, URI, codes).")
@click.pass_obj
def totp_enroll(obj: CliContext, name: str, as_json: bool) -> None:
    """Give a user a new authenticator (TOTP) and ten recovery codes.

    Prints the QR code to scan with the phone's authenticator app, the secret for
    typing in by hand, and the recovery codes, once. A previous authenticator stops
    working and the user's sessions end.
    """
    from gateway.manage import factors

    async def go() -> factors.Enrollment:
        async with obj.admin() as (store, trail):
            enrolled = await factors.enroll_totp(store, obj.config, name)
            await trail.record("totp.enroll", "enrolled", user=name,
                               detail={"recovery_codes": len(enrolled.recovery_codes)})
            return enrolled

    enrolled = run(go)
    if as_json:
        echo_json({"user": enrolled.user, "secret": enrolled.secret, "uri": enrolled.uri,
                   "recovery_codes": list(enrolled.recovery_codes)})
        return
    click.echo(f"Scan this with the authenticator app on {name}'s phone:\n")
    click.echo(_qr_for_terminal(enrolled.uri))
    secret = " ".join(enrolled.secret[i:i + 4] for i in range(0, len(enrolled.secret), 4))
    click.echo(f"or type in the key: {secret}  (time-based, 6 digits, 30 s)\n")
    click.echo("Recovery codes (each works once instead of a code; give them to "
               f"{name} to keep on paper):")
    for code in enrolled.recovery_codes:
        click.echo(f"  {code}")
    click.echo("\nThese are shown only now.")


_RESET_EPILOG = """\b
EXAMPLES
  certgate user totp-reset alice --pending   # lost phone: alice sets up a new one herself
  certgate user totp-reset alice             # then: certgate user totp-enroll alice
"""


@user.command("totp-reset", epilog=_RESET_EPILOG)
@click.argument("name")
@click.option("--pending", is_flag=True,
              help="Let the user set up a new authenticator themselves at their next "
                   "sign-in (certificate and password), instead of `totp-enroll`.")
@click.pass_obj
def totp_reset(obj: CliContext, name: str, pending: bool) -> None:
    """Forget a user's authenticator and recovery codes (lost phone); ends their sessions.

    Without --pending the user can't sign in to applications that ask for a code until
    you run `certgate user totp-enroll`. With --pending they set up the new one
    themselves, on the sign-in page.
    """
    from gateway.manage import factors

    async def go() -> None:
        async with obj.admin() as (store, trail):
            if pending:
                await factors.mark_totp_pending(store, obj.config, name)
                await trail.record("totp.pending", "pending", user=name)
            else:
                await factors.reset_totp(store, name)
                await trail.record("totp.reset", "reset", user=name)

    run(go)
    if pending:
        click.echo(f"authenticator of {name} removed, recovery codes void, sessions ended.")
        click.echo(pending_message(name))
        return
    click.echo(f"authenticator of {name} removed; enroll a new one with "
               f"`certgate user totp-enroll {name}`")


@user.command("recovery-codes")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def recovery_codes(obj: CliContext, name: str, as_json: bool) -> None:
    """Make ten new recovery codes for a user; the old ones stop working."""
    from gateway.manage import factors

    async def go() -> tuple[str, ...]:
        async with obj.admin() as (store, trail):
            codes = await factors.replace_recovery_codes(store, name)
            await trail.record("recovery.replace", "replaced", user=name,
                               detail={"recovery_codes": len(codes)})
            return codes

    codes = run(go)
    if as_json:
        echo_json({"user": name, "recovery_codes": list(codes)})
        return
    click.echo(f"New recovery codes for {name} (each works once; shown only now):")
    for code in codes:
        click.echo(f"  {code}")


@user.command("unlock")
@click.argument("name")
@click.pass_obj
def unlock(obj: CliContext, name: str) -> None:
    """Lift a lockout after too many failed logins, for the user and their certificates."""
    from gateway.manage import factors

    async def go() -> int:
        async with obj.admin() as (store, trail):
            cleared = await factors.unlock_user(store, name)
            if cleared:
                await trail.record("unlock", "unlocked", user=name,
                                   detail={"counters": cleared})
            return cleared

    cleared = run(go)
    click.echo(f"unlocked {name}" if cleared else f"{name} was not locked; nothing to do")


def session_json(s: SessionRecord) -> dict[str, Any]:
    return {"id": s.short_id, "user": s.user, "certificate_sha256": s.fingerprint,
            "created_at": s.created_at.isoformat(), "last_seen": s.last_seen.isoformat(),
            "mfa_at": s.mfa_at.isoformat() if s.mfa_at else None, "factors": list(s.factors),
            "host": s.host, "handed_off_from": s.origin[:16] if s.origin else None}


@click.group("session", epilog=_SESSION_EPILOG)
def session() -> None:
    """List and end login sessions (password + code logins)."""


@session.command("list")
@click.option("--user", help="Only this user's sessions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def session_list(obj: CliContext, user: str | None, as_json: bool) -> None:
    """List live login sessions."""
    from gateway.manage import factors

    async def go() -> list[SessionRecord]:
        async with obj.store() as store:
            return await factors.list_sessions(store, user)

    found = run(go)
    if as_json:
        echo_json([session_json(s) for s in found])
        return
    at = now()
    echo_table(["ID", "USER", "CERTIFICATE", "HOST", "STARTED", "LAST SECOND FACTOR"],
               [[s.short_id, s.user, s.fingerprint[:16],
                 (s.host or "-") + (f" (from {s.origin[:16]})" if s.origin else ""),
                 f"{s.created_at:%Y-%m-%d %H:%M}",
                 f"{int((at - s.mfa_at).total_seconds() // 60)} min ago" if s.mfa_at else "-"]
                for s in found])


@session.command("kill")
@click.argument("session_id", required=False)
@click.option("--user", help="End every session of this user instead.")
@click.pass_obj
def session_kill(obj: CliContext, session_id: str | None, user: str | None) -> None:
    """End a session (the ID from `session list`) and the sessions handed off from it to
    other app hosts, or all of a user's, on every node."""
    from gateway.manage import factors

    if (session_id is None) == (user is None):
        raise click.UsageError("name a session ID or --user, not both")

    async def go() -> list[str]:
        async with obj.admin() as (store, trail):
            owners = {user} if user else {s.user for s in await store.list_sessions()
                                          if s.id_hash.startswith(session_id or "-")}
            ended = await factors.end_sessions(store, session_id=session_id, user=user)
            if ended:  # how many, never which ids
                await trail.record("session.kill", "ended",
                                   user=owners.pop() if len(owners) == 1 else None,
                                   detail={"sessions": len(ended),
                                           "by": "user" if user else "id"})
            return ended

    ended = run(go)
    click.echo(f"ended {len(ended)} session(s)")
