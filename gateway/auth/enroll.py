"""Self-service enrollment of the authenticator app: ``/.certgate/enroll``.

When the admin leaves the authenticator to the person (``certgate user add --totp
pending`` or ``certgate user totp-reset --pending``), the sign-in page asks for the
password only and posts here. In two steps, each a POST with the sign-in's CSRF token:

1. the right password -> the enrollment page: an inline SVG QR code of the
   ``otpauth://`` URI, the secret spelled out in groups of four, and a field for the
   first code. The form carries a signed token (10 minutes) bound to the user, the
   certificate and this pending secret: proof that the password was checked.
2. the token and a right code -> the authenticator is active (a conditional write, so
   it happens once, on any node), ten recovery codes are shown once, and a session
   starts exactly as on sign-in. From then on this page refuses: only an admin reset
   opens it again.

Wrong passwords and wrong codes count towards the sign-in lockout; the password step
uses the sign-in's form, counters and session start (``gateway.auth.login``) rather
than its own. Pages that show the secret or recovery codes are ``no-store``. Never logs
or records the secret, a code, a recovery code or the password; the audit record gets
only the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import segno
from aiohttp import web
from markupsafe import Markup

from gateway.auth.attempts import failure_subjects, give_back, lock_end, note_lock, reserve
from gateway.auth.csrf import csrf_token, csrf_valid
from gateway.auth.login import (
    Answer,
    check_password,
    csrf_key,
    login_url,
    open_secret,
    posted_form,
    refused,
    safe_next,
    sign_in_form,
    start_session,
)
from gateway.auth.recovery import hash_recovery_code, new_recovery_codes
from gateway.auth.secretbox import SecretBox
from gateway.auth.totp import PENDING, accepted_step, provisioning_uri
from gateway.http.pages import html_page, json_page, wants_json
from gateway.identity.index import Identity
from gateway.store.records import TotpRecord
from policies.model import Reason, describe

if TYPE_CHECKING:
    from gateway.runtime import Runtime

ENROLL_PATH = "/.certgate/enroll"
TOKEN_AGE = timedelta(minutes=10)


def _token_key(box: SecretBox) -> bytes:
    return box.derived_key("enroll")


def enroll_binding(identity: Identity, totp: TotpRecord) -> str:
    """What an enrollment token proves: the password of this user was checked with this
    certificate, for this pending secret (an admin's new reset makes old tokens void)."""
    secret_id = hashlib.sha256(totp.secret_sealed.encode()).hexdigest()[:16]
    return f"enroll:{identity.user}:{identity.fingerprint}:{secret_id}"


def enroll_token(box: SecretBox, identity: Identity, totp: TotpRecord, now: datetime) -> str:
    return csrf_token(_token_key(box), enroll_binding(identity, totp), now)


def spelled(secret: str) -> str:
    """``JBSWY3DPEHPK3PXP`` -> ``JBSW Y3DP EHPK 3PXP``: easier to type from a screen."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _closed(request: web.Request, runtime: Runtime, reference: str) -> Answer:
    """Already confirmed: plain words and whom to call, never the secret again."""
    helpdesk = runtime.state.config.auth.helpdesk
    advice = (f"If you lost your phone, call {helpdesk} to reset it. Otherwise open the "
              "application and sign in with your password and the code from the app.")
    if wants_json(request):
        response = json_page(403, {"error": Reason.ENROLL_CLOSED.value,
                                   "message": describe(Reason.ENROLL_CLOSED), "advice": advice,
                                   "reference": reference, "status": 403})
    else:
        response = html_page("refusal.html", 403, title="Already set up",
                             message=describe(Reason.ENROLL_CLOSED), advice=advice,
                             reference=reference, help_link=False)
    return Answer(response, Reason.ENROLL_CLOSED, False)


def enroll_page(request: web.Request, runtime: Runtime, identity: Identity, *, status: int,
                 secret: str, token: str, csrf: str, next_path: str, reference: str,
                 error: str | None = None) -> web.Response:
    auth = runtime.state.config.auth
    account = identity.email or identity.user
    uri = provisioning_uri(secret, account=account, issuer=auth.issuer)
    # segno writes only path data (no text, no script): safe to put into the page as is.
    qr = Markup(segno.make(uri, error="m").svg_inline(  # noqa: S704
        scale=5, border=4, dark="#000", light="#fff", svgclass="qr"))
    return html_page("enroll.html", status, title="Set up your authenticator app",
                     site=request.url.host, person=identity.user, email=identity.email,
                     helpdesk=auth.helpdesk, issuer=auth.issuer, account=account, qr=qr,
                     secret=spelled(secret), token=token, csrf=csrf, next=next_path,
                     error=error, reference=reference)


async def enroll(request: web.Request, runtime: Runtime, identity: Identity,
                 reference: str) -> Answer:
    """POST the password (step 1) or the token and first code (step 2); GET goes to the
    sign-in page, where the password comes first."""
    now = runtime.clock()
    box = runtime.secret_box()
    if box is None:
        return refused(request, Reason.MFA_UNAVAILABLE, 403, reference)
    store = runtime.store
    totp = await store.get_totp(identity.user)
    if totp is None:
        return refused(request, Reason.MFA_NOT_ENROLLED, 403, reference)
    if totp.state != PENDING:
        return _closed(request, runtime, reference)
    if request.method == "GET":
        target = login_url(safe_next(request.query.get("next")))
        return Answer(web.Response(status=303, headers={"Location": target,
                                                        "Cache-Control": "no-store"}),
                      Reason.ENROLL_PAGE, True)
    form = await posted_form(request, reference)
    if isinstance(form, Answer):
        return form
    next_path = safe_next(str(form.get("next", "")))

    def again(status: int, reason: Reason, error: str | None = None,
              locked_until: datetime | None = None) -> Answer:
        """The password-only form again (or the lockout notice in its place)."""
        return Answer(sign_in_form(request, runtime, identity, status=status, reason=reason,
                                   reference=reference, next_path=next_path, now=now,
                                   error=error, locked_until=locked_until, pending=True),
                      reason, False)

    if not csrf_valid(csrf_key(box), str(form.get("csrf", "")), identity.fingerprint, now):
        return again(403, Reason.CSRF_INVALID, "This form was too old or did not come from "
                     "this page. Please type your password again.")
    subjects = failure_subjects(identity)
    failures = await store.failures(subjects)
    locked = lock_end(failures, now)
    if locked is not None:
        return again(429, Reason.LOCKED_OUT, locked_until=locked)
    secret = open_secret(runtime, box, identity, totp)
    if secret is None:
        return refused(request, Reason.MFA_UNAVAILABLE, 403, reference)

    token = str(form.get("token", ""))
    attempt = await reserve(runtime, identity, now)  # counted before it is checked
    if not attempt.checkable:
        return again(429, Reason.LOCKED_OUT, locked_until=attempt.locked_until)
    if not token:  # Step 1: the password; a right one opens the enrollment page.
        if not await check_password(runtime, identity, str(form.get("password", ""))):
            if attempt.locked_until is not None:
                note_lock(runtime, identity, attempt.locked_until, reference=reference,
                          source_ip=request.remote, now=now)
                return again(429, Reason.LOCKED_OUT, locked_until=attempt.locked_until)
            return again(401, Reason.LOGIN_FAILED, "The password is not right. "
                         "Check it and try again.")
        # Half way: the count stays as it was until the code proves the app.
        await give_back(runtime, identity, now)
        return Answer(enroll_page(request, runtime, identity, status=200, secret=secret,
                                   token=enroll_token(box, identity, totp, now),
                                   csrf=csrf_token(csrf_key(box), identity.fingerprint, now),
                                   next_path=next_path, reference=reference),
                      Reason.ENROLL_PAGE, True)

    # Step 2: the token proves step 1 (not older than TOKEN_AGE), the code proves the app.
    if not csrf_valid(_token_key(box), token, enroll_binding(identity, totp), now,
                      max_age=TOKEN_AGE):
        await give_back(runtime, identity, now)  # nothing was checked
        return again(403, Reason.ENROLL_EXPIRED, "The set-up page was open for more than "
                     f"{int(TOKEN_AGE.total_seconds() // 60)} minutes, so it expired. "
                     "Type your password again to get a fresh one.")
    step = accepted_step(secret, str(form.get("code", "")), now=now, after_step=totp.last_step)
    if step is None:
        if attempt.locked_until is not None:
            note_lock(runtime, identity, attempt.locked_until, reference=reference,
                      source_ip=request.remote, now=now)
            return again(429, Reason.LOCKED_OUT, locked_until=attempt.locked_until)
        # The same token again: the ten minutes run from the password, not the last try.
        return Answer(enroll_page(
            request, runtime, identity, status=401, secret=secret, token=token,
            csrf=csrf_token(csrf_key(box), identity.fingerprint, now), next_path=next_path,
            reference=reference, error="That code is not right. Type the 6-digit code the "
            "app shows now (it changes every 30 seconds). If the app has no entry for "
            f"{runtime.state.config.auth.issuer} yet, scan the square code again first."),
            Reason.ENROLL_FAILED, False)

    codes = new_recovery_codes()
    hashes = await asyncio.to_thread(lambda: [hash_recovery_code(c) for c in codes])
    if not await store.accept_totp_step(identity.user, step, confirm=True):
        return _closed(request, runtime, reference)  # confirmed meanwhile (another tab, node)
    await store.replace_recovery_codes(identity.user, hashes)
    await store.clear_failures(subjects)
    response = html_page("enroll_done.html", 200, title="Your authenticator app is set up",
                         site=request.url.host, codes=codes, next=next_path,
                         helpdesk=runtime.state.config.auth.helpdesk, reference=reference)
    await start_session(request, runtime, identity, ("mtls", "pwd", "otp"), now, response)
    return Answer(response, Reason.ENROLLED, True, "cert,totp")
