""""My access": ``/.certgate/me`` on every app host.

A person with their certificate and a fresh second factor (a session whose code is
at most ``FRESH`` old; otherwise they are sent to sign in, or to fetch the sign-in
they have on another app host, exactly as an ``mfa: required`` app does) sees their
certificates, their sessions and their last audit records, and a "renew before"
notice from 30 days before the certificate in use expires. They may:

- suspend a certificate of theirs (a confirmation page first; the one in use too,
  with a warning), through ``manage.me`` -> ``manage.certs.suspend_certificate``:
  every node, the CRL and OCSP see it, as after ``certgate cert suspend``;
- end one of their sessions, or all but this sign-in, through ``Store.end_sessions``
  as ``certgate session kill`` does.

Each change is a POST with a CSRF token bound to the session, and is recorded in the
audit trail (``cert.suspend``, ``session.end``) with the person as actor; the page
view itself is the request's ordinary access record. Answered like the sign-in pages
(``gateway.auth.pages``): this page may use the database, which a proxied request
never does. Must not show or change anything of another user.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.audit.record import AuditRecord
from gateway.auth.csrf import csrf_token, csrf_valid
from gateway.auth.handoff import handoff_location
from gateway.auth.login import Answer, csrf_key, login_url, posted_form
from gateway.auth.secretbox import SecretBox
from gateway.auth.sessions import COOKIE, cookie_value
from gateway.console import recent, views
from gateway.http.pages import html_page, json_page, refusal, wants_json
from gateway.identity.index import Identity
from gateway.manage.ca import load_online_ca
from gateway.manage.errors import ManageError
from gateway.manage.me import MyAccess, end_own_sessions, my_access, suspend_own_certificate
from gateway.store.db import serial_hex
from gateway.store.errors import ConflictError
from gateway.store.records import SessionRecord
from pki.ca import CertificateAuthority
from pki.keys import PkiError
from policies.model import Reason, describe

if TYPE_CHECKING:
    from gateway.runtime import Runtime

ME_PATH = "/.certgate/me"
FRESH = timedelta(minutes=30)  # how old the second factor may be to see or change anything
_DONE = {
    "suspended": "The certificate is suspended. It stops working on every gateway within "
                 "a second. If you find it again, ask your administrator to resume it.",
    "ended": "The session is ended. That browser has to sign in again.",
    "ended-others": "Your other sessions are ended. Those browsers have to sign in again.",
    "none": "You have no other sessions to end.",
}


def _local_port(request: web.Request) -> int:
    transport: Any = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return int(sockname[1]) if sockname else 0


def _to_sign_in(request: web.Request, runtime: Runtime, identity: Identity,
                session: SessionRecord | None, now: datetime) -> Answer:
    """No session with a fresh code: sign in (or fetch the sign-in of another app host),
    then come back here."""
    reason = Reason.MFA_REQUIRED if session is None or session.mfa_at is None \
        else Reason.MFA_TOO_OLD
    target = login_url(ME_PATH)
    if wants_json(request):
        return Answer(json_page(401, {"error": reason.value, "message": describe(reason),
                                      "status": 401, "login": target}), reason, False)
    if reason is Reason.MFA_REQUIRED and request.method == "GET":
        elsewhere = handoff_location(runtime, identity, request.headers.get("Host", ""),
                                     _local_port(request), ME_PATH, now)
        if elsewhere is not None:
            reason, target = Reason.HANDOFF_SENT, elsewhere
    return Answer(web.Response(status=303, headers={"Location": target,
                                                    "Cache-Control": "no-store"}),
                  reason, False)


def _binding(session: SessionRecord) -> str:
    return f"me:{session.id_hash}"


async def _access(runtime: Runtime, identity: Identity, now: datetime) -> MyAccess:
    auth = runtime.state.config.auth
    return await my_access(runtime.store, identity.user, now=now, idle=auth.session_idle,
                           absolute=auth.session_absolute)


async def _overview(request: web.Request, runtime: Runtime, identity: Identity,
                    session: SessionRecord, box: SecretBox, now: datetime, reference: str, *,
                    status: int = 200, error: str | None = None) -> web.Response:
    access = await _access(runtime, identity, now)
    done = _DONE.get(request.query.get("done", "")) if error is None else None
    return html_page(
        "me.html", status, title="My access", person=identity.user, email=identity.email,
        helpdesk=runtime.state.config.auth.helpdesk, site=request.url.host,
        certs=views.cert_rows(access.certificates, identity.fingerprint, now),
        sessions=views.session_rows(access.sessions, session.id_hash, now),
        recent=recent.access_rows(access.recent, identity.user),
        recent_limit=len(access.recent),
        renew=views.renew_notice(identity.not_after, now), done=done, error=error,
        csrf=csrf_token(csrf_key(box), _binding(session), now), reference=reference)


def _serial(text: str) -> int | None:
    text = text.strip().lower()
    if not 0 < len(text) <= 40 or any(c not in "0123456789abcdef" for c in text):
        return None
    return int(text, 16)


async def my_access_page(request: web.Request, runtime: Runtime, identity: Identity,
                         reference: str) -> Answer:
    """GET shows the page (or, with ``?suspend=<serial>``, the confirmation); POST
    makes one change (``action``: suspend, end, end-others)."""
    now = runtime.clock()
    box = runtime.secret_box()
    if box is None:
        return Answer(refusal(request, status=403, reason=Reason.MFA_UNAVAILABLE,
                              reference=reference), Reason.MFA_UNAVAILABLE, False)
    value = cookie_value(request.headers.get("Cookie", ""))
    session = runtime.sessions.lookup(value, identity.fingerprint, now) if value else None
    if session is None or session.mfa_at is None or now - session.mfa_at > FRESH:
        return _to_sign_in(request, runtime, identity, session, now)

    if request.method == "GET":
        asked = request.query.get("suspend")
        if asked is not None:
            return await _confirm(request, runtime, identity, session, box, now, reference,
                                  asked)
        return Answer(await _overview(request, runtime, identity, session, box, now,
                                      reference), Reason.BUILTIN, True)
    form = await posted_form(request, reference)
    if isinstance(form, Answer):
        return form
    if not csrf_valid(csrf_key(box), str(form.get("csrf", "")), _binding(session), now):
        return Answer(await _overview(
            request, runtime, identity, session, box, now, reference, status=403,
            error="Nothing was changed: the form was too old or did not come from this "
                  "page. Please try again."), Reason.CSRF_INVALID, False)
    action = str(form.get("action", ""))
    try:
        if action == "suspend":
            return await _suspend(request, runtime, identity, now, reference,
                                  str(form.get("serial", "")))
        if action in ("end", "end-others"):
            return await _end(request, runtime, identity, session, now, reference, action,
                              str(form.get("session", "")))
    except (ManageError, ConflictError) as exc:  # ConflictError: a race with another change
        return Answer(await _overview(request, runtime, identity, session, box, now,
                                      reference, status=409, error=f"Nothing was changed: "
                                      f"{exc}."), Reason.FORM_INVALID, False)
    return Answer(refusal(request, status=400, reason=Reason.FORM_INVALID,
                          reference=reference), Reason.FORM_INVALID, False)


async def _confirm(request: web.Request, runtime: Runtime, identity: Identity,
                   session: SessionRecord, box: SecretBox, now: datetime, reference: str,
                   asked: str) -> Answer:
    serial = _serial(asked)
    access = await _access(runtime, identity, now)
    rows = views.cert_rows(access.certificates, identity.fingerprint, now)
    row = next((r for r in rows if r.serial == serial and r.can_suspend), None)
    if row is None:
        return Answer(await _overview(request, runtime, identity, session, box, now,
                                      reference, status=404, error="That is not an active "
                                      "certificate of yours; nothing to suspend."),
                      Reason.FORM_INVALID, False)
    return Answer(html_page("me_suspend.html", 200, title="Suspend a certificate", cert=row,
                        serial=serial_hex(row.serial),
                        csrf=csrf_token(csrf_key(box), _binding(session), now),
                        helpdesk=runtime.state.config.auth.helpdesk, reference=reference),
                  Reason.BUILTIN, True)


async def _online_ca(runtime: Runtime) -> CertificateAuthority | PkiError:
    """The CA for the CRL republication, read in a worker thread; why not, if it is not
    available (the suspension stands anyway: the gateways enforce it from the store)."""
    try:
        return await asyncio.to_thread(load_online_ca, runtime.state.config)
    except PkiError as exc:
        return exc


async def _suspend(request: web.Request, runtime: Runtime, identity: Identity, now: datetime,
                   reference: str, asked: str) -> Answer:
    serial = _serial(asked)
    if serial is None:
        raise ManageError("that is not a certificate serial number")
    ca = await _online_ca(runtime)

    def load_ca() -> CertificateAuthority:
        if isinstance(ca, PkiError):
            raise ca
        return ca

    change = await suspend_own_certificate(runtime.store, runtime.state.config, load_ca,
                                           user=identity.user, serial=serial, now=now)
    in_use = change.changed[0].fingerprint == identity.fingerprint
    runtime.audit.emit(AuditRecord.event(
        "cert.suspend", now, reference=reference, reason="suspended-by-holder",
        actor=identity.user, user=identity.user,
        detail={"serial": serial_hex(serial), "in_use": in_use, "page": ME_PATH,
                "crl": change.crl.message})._replace(serial=serial_hex(serial)))
    runtime.log.info("ref %s: %s suspended their certificate %s on the My access page",
                     reference, identity.user, serial_hex(serial),
                     extra={"reference": reference})
    if not in_use:
        return _back("suspended")
    return Answer(html_page("refusal.html", 200, title="Certificate suspended",
                        message="This browser's certificate is now suspended: it stops "
                                "working on every gateway within a second, and this page "
                                "too.",
                        advice=f"If you find it again, ask {runtime.state.config.auth.helpdesk}"
                               " to resume it. Otherwise ask for a new certificate.",
                        reference=reference, help_link=False), Reason.BUILTIN, True)


async def _end(request: web.Request, runtime: Runtime, identity: Identity,
               session: SessionRecord, now: datetime, reference: str, action: str,
               asked: str) -> Answer:
    access = await _access(runtime, identity, now)
    if action == "end":
        ids = [s.id_hash for s in access.sessions if asked and s.short_id == asked.lower()]
        if not ids:
            raise ManageError("that session has ended already, or is not yours")
    else:
        # This sign-in stays, here and on the app hosts it was handed on to.
        family = {session.id_hash, session.origin or session.id_hash}
        ids = [s.id_hash for s in access.sessions
               if s.id_hash not in family and (s.origin or "") not in family]
        if not ids:
            return _back("none")
    ended = await end_own_sessions(runtime.store, user=identity.user, id_hashes=ids)
    for id_hash in ended:
        runtime.sessions.drop(id_hash)  # this node at once; the others through the feed
    current = session.id_hash in ended
    runtime.audit.emit(AuditRecord.event(
        "session.end", now, reference=reference, reason="ended-by-holder",
        actor=identity.user, user=identity.user,
        detail={"sessions": sorted(h[:16] for h in ended), "current": current,
                "page": ME_PATH}))
    if not current:
        return _back("ended" if action == "end" else "ended-others")
    response = html_page("refusal.html", 200, title="Session ended",
                     message="This session is ended: this browser is signed out.",
                     advice="To carry on, open an application again and sign in.",
                     reference=reference, help_link=False)
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
    return Answer(response, Reason.BUILTIN, True)


def _back(done: str) -> Answer:
    """Post, redirect, get: a reload does not post again."""
    return Answer(web.Response(status=303, headers={"Location": f"{ME_PATH}?done={done}",
                                                    "Cache-Control": "no-store"}),
                  Reason.BUILTIN, True)
