"""``certgate cert …``: issue, issue-server, sign-csr, list, show, revoke, renew, suspend, resume.

Parses arguments, calls ``gateway.manage.certs`` and prints (text or ``--json``).
The workflows themselves (the .p12 before the record, the CRL after every
revocation) live in ``manage``; nothing here touches the CA or a key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from gateway.cli.cert_server_cmd import issue_server
from gateway.cli.common import (
    CliContext,
    CliError,
    ca_loader,
    echo_json,
    echo_table,
    now,
    run,
    warn,
)
from gateway.manage import certs
from gateway.manage.bundles import MIN_P12_PASSWORD, BundleRequest, refuse_existing
from gateway.manage.certs import REVOKE_REASONS, IssuedCertificate, StatusChange
from gateway.manage.crl import CrlNote
from gateway.store.db import serial_from_text, serial_hex
from gateway.store.records import CertRecord, CertStatus
from pki.keys import read_secret_line


def cert_json(c: CertRecord, at: datetime | None = None) -> dict[str, Any]:
    at = at or now()
    status = "expired" if c.status is CertStatus.ACTIVE and c.is_expired(at) else c.status.value
    return {
        "serial": serial_hex(c.serial), "user": c.user, "status": status,
        "fingerprint_sha256": c.fingerprint, "subject": c.subject,
        "not_before": c.not_before.isoformat(), "not_after": c.not_after.isoformat(),
        "issued_at": c.issued_at.isoformat(),
        "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
        "reason": c.reason, "replaced_by": serial_hex(c.replaced_by) if c.replaced_by else None,
        "key_source": c.key_source,
    }


def _serial(text: str) -> int:
    try:
        return serial_from_text(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SERIAL") from None


def _p12_password(path: Path | None) -> str | None:
    """The password from --p12-password-file, or None to have one generated."""
    if path is None:
        return None
    text = read_secret_line(path)
    if len(text) < MIN_P12_PASSWORD:
        raise CliError(f"the PKCS#12 password in {path} must have at least "
                       f"{MIN_P12_PASSWORD} characters")
    return text


def _bundle(out: Path | None, p12_password_file: Path | None,
            p12_profile: str | None) -> BundleRequest:
    password = _p12_password(p12_password_file)
    if out is not None:
        refuse_existing(out)  # before the database is opened
    return BundleRequest(out=out, password=password, profile=p12_profile)  # type: ignore[arg-type]


def _note(note: CrlNote) -> None:
    if note.published:
        click.echo(note.message)
    else:
        warn(note.message)


_EPILOG = """\b
EXAMPLES
  certgate cert issue alice --out alice.p12
  certgate cert issue bob --p12-profile compat --days 180 --json
  certgate cert issue-server gw.example.com wiki.example.com --out tls/new.pem
  certgate cert list --status active --expiring-within 30
  certgate cert suspend 5F3A9C...          # "I may have lost my USB stick"
  certgate cert revoke 5F3A9C... --reason keyCompromise
  certgate cert revoke --user bob --all --reason affiliationChanged
"""


@click.group("cert", epilog=_EPILOG)
def cert() -> None:
    """Issue, list and revoke client certificates."""


def _days_option(f: Any) -> Any:
    return click.option("--days", type=click.IntRange(1, 3650), default=None,
                        help="Validity in days (default: pki.client_cert_days).")(f)


def _bundle_options(f: Any) -> Any:
    """The options of every command that hands out a new .p12 (issue, renew)."""
    for option in reversed((
        _days_option,
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                     help="PKCS#12 file to write (default USER-SERIAL.p12 here)."),
        click.option("--p12-password-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="File whose first line protects the .p12 (default: a generated one)."),
        click.option("--p12-profile", type=click.Choice(["modern", "compat"]), default=None,
                     help="modern: AES-256/SHA-256; compat: 3DES/SHA-1 for macOS and old "
                          "Windows."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    )):
        f = option(f)
    return f


@cert.command("issue")
@click.argument("user")
@_bundle_options
@click.pass_obj
def issue(obj: CliContext, user: str, days: int | None, out: Path | None,
          p12_password_file: Path | None, p12_profile: str | None, as_json: bool) -> None:
    """Issue a certificate and key for USER as a password-protected .p12 file.

    Prints the file's password (when generated) and the certificate's one-time stop
    code, each shown once: with the stop code the user can stop the certificate at
    /.certgate/lost without it (a lost USB stick)."""
    config = obj.config
    bundle = _bundle(out, p12_password_file, p12_profile)

    async def go() -> IssuedCertificate:
        async with obj.admin() as (store, trail):
            issued = await certs.issue_certificate(store, config, ca_loader(config), user=user,
                                                   days=days, bundle=bundle, now=now())
            await trail.certificates("cert.issue", [issued.record], "issued")
            return issued

    _report_issue(run(go), as_json)


def _report_issue(issued: IssuedCertificate, as_json: bool) -> None:
    record = issued.record
    info = {"serial": serial_hex(record.serial), "user": record.user,
            "fingerprint_sha256": record.fingerprint,
            "not_after": record.not_after.isoformat(), "file": str(issued.path)}
    if as_json:
        echo_json({**info, "password": issued.password, "stop_code": issued.stop_code})
        return
    click.echo(f"issued certificate {info['serial']} for {record.user}, valid until "
               f"{record.not_after:%Y-%m-%d}")
    click.echo(f"  file:     {issued.path}")
    if issued.password is not None:
        click.echo(f"  password: {issued.password}")
        click.echo("  (shown once: give it to the user separately from the file)")
    if issued.stop_code is not None:
        click.echo(f"  stop code: {issued.stop_code}  (user name: {record.user})")
        click.echo("  (shown once: hand both to the user, to keep apart from the USB stick; "
                   "with them they can stop this certificate at "
                   "https://<any app host>/.certgate/lost)")


@cert.command("sign-csr")
@click.argument("csr_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--user", "user", required=True, help="The user the certificate is for.")
@_days_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM file for the certificate chain (default: print it).")
@click.pass_obj
def sign_csr_cmd(obj: CliContext, csr_file: Path, user: str, days: int | None,
                 out: Path | None) -> None:
    """Sign a CSR for a key that never leaves the user's device."""
    config = obj.config
    csr = certs.csr_from_pem(csr_file.read_bytes(), str(csr_file))
    if out is not None:
        refuse_existing(out)

    async def go() -> CertRecord:
        async with obj.admin() as (store, trail):
            signed = await certs.sign_csr(store, config, ca_loader(config), csr=csr, user=user,
                                          days=days, now=now())
            await trail.certificates("cert.issue", [signed], "issued")
            return signed

    signed = run(go)
    if out is None:
        click.echo(signed.pem, nl=False)
    else:
        out.write_bytes(signed.pem.encode())
        click.echo(f"issued certificate {serial_hex(signed.serial)} for {user}: {out}")


@cert.command("list")
@click.option("--user", help="Only this user's certificates.")
@click.option("--status", type=click.Choice(["active", "suspended", "revoked", "expired"]))
@click.option("--expiring-within", type=click.IntRange(0, 36500), metavar="DAYS",
              help="Only unexpired certificates that expire within DAYS.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(obj: CliContext, user: str | None, status: str | None, expiring_within: int | None,
          as_json: bool) -> None:
    """List certificates."""
    at = now()

    async def go() -> list[CertRecord]:
        async with obj.store() as store:
            kwargs: dict[str, Any] = {"user": user, "now": at}
            if status == "expired":
                kwargs.update(expired=True)
            elif status is not None:
                kwargs.update(status=CertStatus(status))
                if status == "active":
                    kwargs.update(expired=False)
            if expiring_within is not None:
                kwargs.update(expired=False, expiring_before=at + timedelta(days=expiring_within))
            return await store.list_certificates(**kwargs)

    certs = [cert_json(c, at) for c in run(go)]
    if as_json:
        echo_json(certs)
        return
    echo_table(["SERIAL", "USER", "STATUS", "NOT AFTER", "FINGERPRINT"],
               [[c["serial"], c["user"], c["status"], c["not_after"][:10],
                 c["fingerprint_sha256"][:16] + "…"] for c in certs])


@cert.command("show")
@click.argument("serial")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(obj: CliContext, serial: str, as_json: bool) -> None:
    """Show one certificate (serial with or without colons)."""
    number = _serial(serial)

    async def go() -> CertRecord:
        async with obj.store() as store:
            return await store.get_certificate(number)

    info = cert_json(run(go))
    if as_json:
        echo_json(info)
        return
    for key, value in info.items():
        click.echo(f"{key + ':':20s}{value if value is not None else '-'}")


@cert.command("revoke")
@click.argument("serial", required=False)
@click.option("--user", help="With --all: revoke every certificate of this user.")
@click.option("--all", "all_", is_flag=True, help="With --user: every certificate.")
@click.option("--reason", type=click.Choice(REVOKE_REASONS), default="unspecified",
              show_default=True, help="RFC 5280 reason.")
@click.option("--invalidity-date", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="With --reason keyCompromise: when the key was (probably) compromised, "
                   "UTC; written into the CRL.")
@click.pass_obj
def revoke(obj: CliContext, serial: str | None, user: str | None, all_: bool, reason: str,
           invalidity_date: datetime | None) -> None:
    """Revoke a certificate for good; it stops working on every node within a second."""
    if serial and (user or all_):
        raise click.UsageError("give either SERIAL or --user USER --all, not both")
    if not serial and not (user and all_):
        raise click.UsageError("give a SERIAL, or --user USER --all")
    if invalidity_date is not None and reason != "keyCompromise":
        raise click.UsageError("--invalidity-date goes with --reason keyCompromise")
    if invalidity_date is not None and not serial:
        raise click.UsageError("--invalidity-date goes with one SERIAL, not --user USER --all")
    config = obj.config
    invalid = invalidity_date.replace(tzinfo=now().tzinfo) if invalidity_date else None

    async def go() -> StatusChange:
        async with obj.admin() as (store, trail):
            if serial:
                done = await certs.revoke_certificate(
                    store, config, ca_loader(config), serial=_serial(serial), reason=reason,
                    invalidity_date=invalid, now=now())
            else:
                assert user is not None
                done = await certs.revoke_user_certificates(
                    store, config, ca_loader(config), user=user, reason=reason, now=now())
            await trail.certificates("cert.revoke", done.changed, reason, detail={
                "invalidity_date": invalid.isoformat() if invalid else None})
            await trail.crl(done.crl)
            return done

    done = run(go)
    for c in done.changed:
        click.echo(f"revoked {serial_hex(c.serial)} ({c.user})")
    if not done.changed:
        click.echo(f"{user} has no certificate left to revoke")
    _note(done.crl)


def _status_change(obj: CliContext, serial: str, action: str) -> None:
    number = _serial(serial)
    config = obj.config
    use_case = certs.suspend_certificate if action == "suspend" else certs.resume_certificate

    async def go() -> StatusChange:
        async with obj.admin() as (store, trail):
            done = await use_case(store, config, ca_loader(config), serial=number, now=now())
            await trail.certificates(f"cert.{action}", done.changed,
                                     "suspended" if action == "suspend" else "resumed")
            await trail.crl(done.crl)
            return done

    done = run(go)
    changed = done.changed[0]
    click.echo(f"{action}{'ed' if action == 'suspend' else 'd'} {serial_hex(changed.serial)} "
               f"({changed.user})")
    _note(done.crl)


@cert.command("suspend")
@click.argument("serial")
@click.pass_obj
def suspend(obj: CliContext, serial: str) -> None:
    """Put a certificate on hold (certificateHold) until `cert resume` or `cert revoke`."""
    _status_change(obj, serial, "suspend")


@cert.command("resume")
@click.argument("serial")
@click.pass_obj
def resume(obj: CliContext, serial: str) -> None:
    """Lift a suspension: the certificate works again."""
    _status_change(obj, serial, "resume")


@cert.command("renew")
@click.argument("serial")
@_bundle_options
@click.pass_obj
def renew(obj: CliContext, serial: str, days: int | None, out: Path | None,
          p12_password_file: Path | None, p12_profile: str | None, as_json: bool) -> None:
    """Issue a new key and certificate for the same user; the old one becomes superseded.

    The new certificate gets a new one-time stop code, printed once."""
    number = _serial(serial)
    config = obj.config
    bundle = _bundle(out, p12_password_file, p12_profile)

    async def go() -> IssuedCertificate:
        async with obj.admin() as (store, trail):
            renewed = await certs.renew_certificate(store, config, ca_loader(config),
                                                    serial=number, days=days, bundle=bundle,
                                                    now=now())
            await trail.certificates("cert.renew", [renewed.record], "renewed",
                                     detail={"replaces": serial_hex(number)})
            if renewed.crl is not None:
                await trail.crl(renewed.crl)
            return renewed

    renewed = run(go)
    _report_issue(renewed, as_json)
    if not as_json:
        click.echo(f"  replaces {serial_hex(number)} (now revoked: superseded)")
        assert renewed.crl is not None
        _note(renewed.crl)


cert.add_command(issue_server)
