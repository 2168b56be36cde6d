"""The console's certificates page: list and filter, issue, suspend, resume, revoke, renew.

Issuing (and renewing) goes through ``gateway.manage.certs`` in a worker
(``work.in_worker``) and ends on the hand-over page: the ``.p12`` password and the
stop code, shown this once, and a one-time download link (``gateway.console.download``)
valid 24 hours, for the admin to pass on (or to e-mail to the person from that page,
``gateway.console.mailing``). Suspend, resume, revoke and renew first show
a confirmation page whose form POSTs the change. Every change is recorded with
``AdminTrail`` as the CLI records it (``cert.issue``, ``cert.suspend`` …, ``crl.sign``),
with the console user as actor, and the link's creation as ``cert.download_link``.

A form of issue or renew is accepted once (a browser's "resend" would otherwise
issue a second certificate): its one-time ``nonce`` is remembered on this node.
Must not keep a password, a stop code or a link token anywhere but the page.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from collections import OrderedDict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from aiohttp import web

from gateway.config.mail import is_address
from gateway.console.overview import when
from gateway.console.work import in_worker
from gateway.manage import certs
from gateway.manage.bundles import BundleRequest
from gateway.manage.ca import load_online_ca
from gateway.manage.errors import ManageError
from gateway.manage.trail import AdminTrail
from gateway.store.db import serial_from_text, serial_hex
from gateway.store.errors import NotFoundError
from gateway.store.records import CertRecord, CertStatus
from gateway.store.store import Store

if TYPE_CHECKING:
    from gateway.console.handler import Handler, Visit

LINK_VALID = timedelta(hours=24)
DOWNLOAD_PATH = "/.certgate/download"
MAIL_LINK_PATH = "/certificates/mail-link"  # gateway.console.mailing
STATUSES = ("all", "active", "suspended", "revoked", "expired")
EXPIRY = {"": None, "30": 30, "90": 90}
CONFIRMED = ("suspend", "resume", "revoke", "renew")
_NONCES: OrderedDict[str, None] = OrderedDict()
_NONCES_KEPT = 2000


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _state(cert: CertRecord, visit: Visit) -> str:
    if cert.status is CertStatus.ACTIVE and cert.not_after <= visit.now:
        return "expired"
    return cert.status.value


def _serial(visit: Visit, name: str = "serial") -> int:
    text = visit.field(name) or visit.request.query.get(name, "")
    try:
        return serial_from_text(text)
    except ValueError:
        raise ManageError(f"'{text[:40]}' is not a certificate serial") from None


def _spend_nonce(visit: Visit) -> None:
    nonce = visit.field("nonce")
    if not nonce or nonce in _NONCES:
        raise ManageError("this form was already sent once, so nothing more was done; "
                          "see the certificate list")
    _NONCES[nonce] = None
    while len(_NONCES) > _NONCES_KEPT:
        _NONCES.popitem(last=False)


async def show(visit: Visit) -> web.Response:
    query = visit.request.query
    status = query.get("status", "all")
    status = status if status in STATUSES else "all"
    expiry = query.get("expiring", "")
    expiry = expiry if expiry in EXPIRY else ""
    person = query.get("user", "").strip()[:128]
    days = EXPIRY[expiry]
    stored = None if status in ("all", "expired") else CertStatus(status)
    found = await visit.runtime.store.list_certificates(
        status=stored, now=visit.now,
        expired=True if status == "expired" else (False if days else None),
        expiring_before=visit.now + timedelta(days=days) if days else None)
    rows = [c for c in found if (not person or c.user == person)
            and (status != "expired" or c.status is CertStatus.ACTIVE)]
    rows.sort(key=lambda c: c.issued_at, reverse=True)
    return visit.page("console_certs.html", title="Certificates", here="/certificates",
                      certs=rows, state=lambda c: _state(c, visit), when=when,
                      serial_hex=serial_hex, chosen=status, expiring=expiry, person=person,
                      statuses=STATUSES, nonce=secrets.token_urlsafe(16),
                      default_profile=visit.runtime.state.config.pki.p12_profile)


async def confirm(visit: Visit) -> web.Response:
    action = visit.request.query.get("action", "")
    if action not in CONFIRMED:
        raise ManageError(f"'{action[:40]}' is not something the console does to a "
                          "certificate")
    cert = await visit.runtime.store.get_certificate(_serial(visit))
    return visit.page("console_confirm.html", title=f"{action.capitalize()} a certificate",
                      here="/certificates", action=action, cert=cert,
                      state=_state(cert, visit), when=when, serial_hex=serial_hex,
                      reasons=certs.REVOKE_REASONS, nonce=secrets.token_urlsafe(16),
                      default_profile=visit.runtime.state.config.pki.p12_profile,
                      narrow=True)


def _profile(visit: Visit) -> Literal["modern", "compat"]:
    profile = visit.field("profile") or visit.runtime.state.config.pki.p12_profile
    if profile not in ("modern", "compat"):
        raise ManageError(f"'{profile[:20]}' is not a file profile (modern or compat)")
    return "modern" if profile == "modern" else "compat"


async def mail_address(visit: Visit, holder: str) -> str | None:
    """Where the link to ``holder`` may be e-mailed: None without ``mail:`` or an address."""
    if visit.runtime.state.config.mail is None:
        return None
    try:
        email = (await visit.runtime.store.get_user(holder)).email
    except NotFoundError:
        return None
    return email if email and is_address(email) else None


async def _hand_over(visit: Visit, renew_serial: int | None) -> web.Response:
    """Issue (or renew), store the .p12 behind a one-time link, show the hand-over."""
    config = visit.runtime.state.config
    person = visit.field("user")
    if renew_serial is None and not person:
        raise ManageError("say whose certificate it is: type the person's user name")
    profile = _profile(visit)
    _spend_nonce(visit)
    now, token = visit.now, secrets.token_urlsafe(32)

    async def job(store: Store, trail: AdminTrail) -> certs.IssuedCertificate:
        with tempfile.TemporaryDirectory(prefix="certgate-console-") as tmp:
            bundle = BundleRequest(out=Path(tmp) / "new.p12", profile=profile)
            loader = lambda: load_online_ca(config)  # noqa: E731 - in the worker thread
            if renew_serial is None:
                issued = await certs.issue_certificate(store, config, loader, user=person,
                                                       bundle=bundle, now=now)
                await trail.certificates("cert.issue", [issued.record], "issued")
            else:
                issued = await certs.renew_certificate(store, config, loader,
                                                       serial=renew_serial, bundle=bundle,
                                                       now=now)
                await trail.certificates("cert.renew", [issued.record], "renewed",
                                         detail={"replaces": serial_hex(renew_serial)})
                if issued.crl is not None:
                    await trail.crl(issued.crl)
            p12 = issued.path.read_bytes()
        record = issued.record
        await store.create_download(token_hash(token), serial=record.serial,
                                    holder=record.user, p12=p12, created_by=visit.user,
                                    expires_at=now + LINK_VALID, now=now)
        await trail.record("cert.download_link", "created", user=record.user,
                           serial=serial_hex(record.serial),
                           detail={"expires_at": (now + LINK_VALID).isoformat()})
        return issued

    issued, problems = await in_worker(config, visit.user, job)
    link = f"https://{visit.request.host}{DOWNLOAD_PATH}?t={token}"
    return visit.page("console_handover.html", title="Hand over the certificate",
                      here="/certificates", issued=issued, link=link, when=when, token=token,
                      mail_to=await mail_address(visit, issued.record.user),
                      mail_action=MAIL_LINK_PATH,
                      serial_hex=serial_hex, link_expires=when(now + LINK_VALID),
                      error="; ".join(problems) or None, narrow=True)


async def issue(visit: Visit) -> web.Response:
    return await _hand_over(visit, None)


async def renew(visit: Visit) -> web.Response:
    return await _hand_over(visit, _serial(visit))


async def _status(visit: Visit, action: str) -> web.Response:
    config = visit.runtime.state.config
    serial, now = _serial(visit), visit.now
    reason = visit.field("reason") or "unspecified"

    async def job(store: Store, trail: AdminTrail) -> certs.StatusChange:
        loader = lambda: load_online_ca(config)  # noqa: E731 - in the worker thread
        if action == "revoke":
            done = await certs.revoke_certificate(store, config, loader, serial=serial,
                                                  reason=reason, now=now)
            await trail.certificates("cert.revoke", done.changed, reason,
                                     detail={"invalidity_date": None})
        else:
            use_case = (certs.suspend_certificate if action == "suspend"
                        else certs.resume_certificate)
            done = await use_case(store, config, loader, serial=serial, now=now)
            await trail.certificates(f"cert.{action}", done.changed,
                                     "suspended" if action == "suspend" else "resumed")
        await trail.crl(done.crl)
        return done

    done, problems = await in_worker(config, visit.user, job)
    changed = done.changed[0]
    past = {"revoke": "revoked", "suspend": "suspended", "resume": "resumed"}[action]
    notice = (f"Certificate {serial_hex(changed.serial)} of {changed.user} is {past}; "
              "every gateway node applies it within a second.")
    if done.crl.number is None and done.crl.problem:
        notice += f" The CRL was not republished: {done.crl.problem}."
    return visit.page("console_message.html", title=f"Certificate {past}", text=notice,
                      back="/certificates", here="/certificates",
                      error="; ".join(problems) or None, narrow=True)


async def suspend(visit: Visit) -> web.Response:
    return await _status(visit, "suspend")


async def resume(visit: Visit) -> web.Response:
    return await _status(visit, "resume")


async def revoke(visit: Visit) -> web.Response:
    return await _status(visit, "revoke")


ACTIONS: dict[str, Handler] = {"issue": issue, "suspend": suspend, "resume": resume,
                               "revoke": revoke, "renew": renew}
