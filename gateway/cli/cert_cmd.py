"""``certgate cert …``: issue, sign-csr, list, show, revoke, renew, suspend, resume.

Issuing writes the PKCS#12 file first and the database record second (removing the
file if the record fails), so no certificate exists that nobody holds. Every
revocation publishes a fresh CRL when the CA key is available.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.cli.common import CliContext, CliError, echo_json, echo_table, now, run, warn
from gateway.config import Config
from gateway.manage.ca import load_online_ca
from gateway.manage.crl import publish_crl
from gateway.store.db import serial_from_text, serial_hex
from gateway.store.records import CertRecord, CertStatus, UserRecord
from gateway.store.store import Store
from pki.ca import CertificateAuthority, issue_client_cert, sign_csr, user_uri
from pki.keys import PkiError, PrivateKey, fingerprint_sha256, generate_key, write_secret_file
from pki.p12 import build_p12, generate_p12_password

# certificateHold is what `suspend` is for; removeFromCRL is not a revocation.
REVOKE_REASONS = ("unspecified", "keyCompromise", "affiliationChanged", "superseded",
                  "cessationOfOperation", "privilegeWithdrawn")


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


def _prompt_passphrase() -> str:
    return str(click.prompt("CA key passphrase", hide_input=True))


def _ca(config: Config) -> CertificateAuthority:
    """The online CA; prompts for the passphrase only on a terminal."""
    return load_online_ca(config, prompt=_prompt_passphrase if os.isatty(0) else None)


def _record(cert: x509.Certificate, user: str, key_source: str) -> CertRecord:
    return CertRecord(
        serial=cert.serial_number, user=user, fingerprint=fingerprint_sha256(cert),
        subject=cert.subject.rfc4514_string(), not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, status=CertStatus.ACTIVE, issued_at=now(),
        pem=cert.public_bytes(Encoding.PEM).decode(), key_source=key_source)


def _check_user(found: UserRecord) -> None:
    if not found.enabled:
        raise CliError(f"user '{found.name}' is disabled; enable them first")


def _p12_password(path: Path | None) -> tuple[str, bool]:
    if path is None:
        return generate_p12_password(), True
    try:
        text = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    if not text or len(text[0]) < 8:
        raise CliError(f"the PKCS#12 password in {path} must have at least 8 characters")
    return text[0], False


def _out_path(out: Path | None, user: str, serial: int) -> Path:
    path = out or Path(f"{user}-{serial_hex(serial)[:8]}.p12")
    if path.exists():
        raise CliError(f"{path} already exists; refusing to overwrite it")
    return path


async def _republish(store: Store, config: Config) -> str:
    """Publish a CRL after a revocation; say so, or say why not."""
    try:
        ca = _ca(config)
    except PkiError as exc:
        return (f"the CRL was not re-signed ({exc}); run `certgate crl` or let the server "
                "re-sign it")
    crl = await publish_crl(store, ca, validity=config.pki.crl_validity, now=now())
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    return f"published CRL number {number}"


def _issue_bundle(config: Config, ca: CertificateAuthority, found: UserRecord, days: int
                  ) -> tuple[x509.Certificate, PrivateKey]:
    key_type = "rsa3072" if not hasattr(ca.issuing_key, "curve") else "ec-p256"
    key = generate_key(key_type)  # type: ignore[arg-type]
    cert = issue_client_cert(ca, key.public_key(), user=found.name, email=found.email,
                             days=days, now=now(), crl_url=config.pki.crl_url,
                             ocsp_url=config.pki.ocsp_url, uri=_uri(config, found.name))
    return cert, key


def _uri(config: Config, user: str) -> str | None:
    return user_uri(config.public_hostnames[0], user) if config.public_hostnames else None


def _write_p12(config: Config, ca: CertificateAuthority, cert: x509.Certificate,
               key: PrivateKey, path: Path, password: str, profile: str) -> None:
    org = ca.root_cert.subject.rfc4514_string()
    data = build_p12(key, cert, ca.chain, password=password.encode("utf-8"),
                     profile=profile,  # type: ignore[arg-type]
                     friendly_name=f"{cert.subject.rfc4514_string()} ({org})")
    write_secret_file(path, data)


_EPILOG = """\b
EXAMPLES
  certgate cert issue alice --out alice.p12
  certgate cert issue bob --p12-profile compat --days 180 --json
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
    """Issue a certificate and key for USER as a password-protected .p12 file."""
    config = obj.config
    password, generated = _p12_password(p12_password_file)
    if out is not None and out.exists():
        raise CliError(f"{out} already exists; refusing to overwrite it")

    async def go() -> tuple[x509.Certificate, Path]:
        async with obj.store() as store:
            found = await store.get_user(user)
            _check_user(found)
            ca = _ca(config)
            cert_, key = _issue_bundle(config, ca, found, days or config.pki.client_cert_days)
            path = _out_path(out, user, cert_.serial_number)
            _write_p12(config, ca, cert_, key, path, password,
                       p12_profile or config.pki.p12_profile)
            try:
                await store.add_certificate(_record(cert_, user, "p12"))
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return cert_, path

    issued, path = run(go)
    _report_issue(issued, user, path, password, generated, as_json)


def _report_issue(issued: x509.Certificate, user: str, path: Path, password: str,
                  generated: bool, as_json: bool) -> None:
    info = {"serial": serial_hex(issued.serial_number), "user": user,
            "fingerprint_sha256": fingerprint_sha256(issued),
            "not_after": issued.not_valid_after_utc.isoformat(), "file": str(path)}
    if as_json:
        echo_json({**info, "password": password if generated else None})
        return
    click.echo(f"issued certificate {info['serial']} for {user}, valid until "
               f"{issued.not_valid_after_utc:%Y-%m-%d}")
    click.echo(f"  file:     {path}")
    if generated:
        click.echo(f"  password: {password}")
        click.echo("  (shown once: give it to the user separately from the file)")


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
    try:
        csr = x509.load_pem_x509_csr(csr_file.read_bytes())
    except ValueError:
        raise CliError(f"{csr_file} is not a PEM certificate signing request") from None
    if out is not None and out.exists():
        raise CliError(f"{out} already exists; refusing to overwrite it")

    async def go() -> x509.Certificate:
        async with obj.store() as store:
            found = await store.get_user(user)
            _check_user(found)
            ca = _ca(config)
            signed = sign_csr(ca, csr, user=user, email=found.email,
                              days=days or config.pki.client_cert_days, now=now(),
                              crl_url=config.pki.crl_url, ocsp_url=config.pki.ocsp_url,
                              uri=_uri(config, user))
            await store.add_certificate(_record(signed, user, "csr"))
            return signed

    signed = run(go)
    chain = signed.public_bytes(Encoding.PEM)
    if out is None:
        click.echo(chain.decode(), nl=False)
    else:
        out.write_bytes(chain)
        click.echo(f"issued certificate {serial_hex(signed.serial_number)} for {user}: {out}")


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
              help="When the key was (probably) compromised, UTC.")
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
    config = obj.config
    stored_reason = None if reason == "unspecified" else reason
    invalid = invalidity_date.replace(tzinfo=now().tzinfo) if invalidity_date else None

    async def go() -> tuple[list[CertRecord], str]:
        async with obj.store() as store:
            if serial:
                done = [await store.revoke_certificate(_serial(serial), reason=stored_reason,
                                                       at=now(), invalidity_date=invalid)]
            else:
                assert user is not None
                done = await store.revoke_user_certificates(user, reason=stored_reason,
                                                            at=now())
            return done, await _republish(store, config)

    done, note = run(go)
    for c in done:
        click.echo(f"revoked {serial_hex(c.serial)} ({c.user})")
    if not done:
        click.echo(f"{user} has no certificate left to revoke")
    _note(note)


def _note(note: str) -> None:
    if note.startswith("published"):
        click.echo(note)
    else:
        warn(note)


def _status_change(obj: CliContext, serial: str, action: str) -> None:
    number = _serial(serial)
    config = obj.config

    async def go() -> tuple[CertRecord, str]:
        async with obj.store() as store:
            if action == "suspend":
                changed = await store.suspend_certificate(number, at=now())
            else:
                changed = await store.resume_certificate(number)
            return changed, await _republish(store, config)

    changed, note = run(go)
    click.echo(f"{action}{'ed' if action == 'suspend' else 'd'} {serial_hex(changed.serial)} "
               f"({changed.user})")
    _note(note)


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
    """Issue a new key and certificate for the same user; the old one becomes superseded."""
    number = _serial(serial)
    config = obj.config
    password, generated = _p12_password(p12_password_file)
    if out is not None and out.exists():
        raise CliError(f"{out} already exists; refusing to overwrite it")

    async def go() -> tuple[x509.Certificate, Path, str, str]:
        async with obj.store() as store:
            old = await store.get_certificate(number)
            if old.status is CertStatus.REVOKED:
                raise CliError(f"certificate {serial_hex(number)} is revoked; "
                               "issue a new one with `certgate cert issue`")
            found = await store.get_user(old.user)
            _check_user(found)
            ca = _ca(config)
            new, key = _issue_bundle(config, ca, found, days or config.pki.client_cert_days)
            path = _out_path(out, found.name, new.serial_number)
            _write_p12(config, ca, new, key, path, password,
                       p12_profile or config.pki.p12_profile)
            try:
                await store.supersede_certificate(number, _record(new, found.name, "p12"),
                                                  at=now())
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return new, path, found.name, await _republish(store, config)

    new, path, user, note = run(go)
    _report_issue(new, user, path, password, generated, as_json)
    if not as_json:
        click.echo(f"  replaces {serial_hex(number)} (now revoked: superseded)")
        _note(note)
