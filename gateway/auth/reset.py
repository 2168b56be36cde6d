"""Choosing a new password with the admin's set-up code: ``/.certgate/reset``.

An admin opens a password reset (``certgate user password-reset`` or the console):
the person's old password stops working and they get a one-time set-up code by phone
(``gateway.manage.resets``). While it is open, the sign-in page shows this page's form
instead of the password field: the set-up code, the new password twice and, when their
authenticator is active, its code. So a sign-in still takes three things: the
certificate, the admin's code (in place of the password) and the phone. With the
authenticator left to the person ("pending"), certificate and code are enough and the
page goes on to the enrollment page (``gateway.auth.enroll``), as a password would.

One POST with the sign-in's CSRF token. A new password that fails the policy
(``gateway.auth.passwords.check_policy``) is refused in plain words before anything is
checked, and counts nothing. Wrong codes count towards the sign-in lockout
(``gateway.auth.attempts``) and never say which code was wrong; both are always
checked. On success the code is spent by a conditional write in the same transaction
as the new password (argon2id, hashed in a worker thread), so two nodes can't both use
it; a session starts as after sign-in. The request's audit record is
``password.reset`` (``reset-completed`` / ``reset-failed``).

Never logs or records the code or the password.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.auth.attempts import failure_subjects, give_back, lock_end, note_lock, reserve
from gateway.auth.csrf import csrf_token, csrf_valid
from gateway.auth.enroll import enroll_page, enroll_token
from gateway.auth.login import (
    Answer,
    csrf_key,
    login_url,
    open_secret,
    posted_form,
    refused,
    safe_next,
    sign_in_form,
    start_session,
)
from gateway.auth.passwords import WeakPasswordError, check_policy, hash_password
from gateway.auth.resetcodes import code_matches, well_formed
from gateway.auth.stopcodes import hash_stop_code
from gateway.auth.totp import PENDING, accepted_step
from gateway.http.exchange import factors_label
from gateway.identity.index import Identity
from policies.model import Reason

if TYPE_CHECKING:
    from gateway.runtime import Runtime

RESET_PATH = "/.certgate/reset"


@functools.cache
def _decoy() -> str:
    """What a malformed code is checked against, so that it costs the same time."""
    return hash_stop_code(secrets.token_hex(8))


async def reset(request: web.Request, runtime: Runtime, identity: Identity,
                reference: str) -> Answer:
    """POST the set-up code and the new password (and the authenticator's code); GET
    goes to the sign-in page, which shows this form while a reset is open."""
    now = runtime.clock()
    box = runtime.secret_box()
    if box is None:
        return refused(request, Reason.MFA_UNAVAILABLE, 403, reference)
    store = runtime.store
    totp = await store.get_totp(identity.user)
    if totp is None:
        return refused(request, Reason.MFA_NOT_ENROLLED, 403, reference)
    if request.method == "GET":
        target = login_url(safe_next(request.query.get("next")))
        return Answer(web.Response(status=303, headers={"Location": target,
                                                        "Cache-Control": "no-store"}),
                      Reason.RESET_PAGE, True)
    form = await posted_form(request, reference)
    if isinstance(form, Answer):
        return form
    next_path = safe_next(str(form.get("next", "")))
    pending = totp.state == PENDING
    open_reset = await store.open_password_reset(identity.user, now)

    def again(status: int, reason: Reason, error: str | None = None,
              locked_until: datetime | None = None) -> Answer:
        """The reset form again (the sign-in form once no reset is open)."""
        return Answer(sign_in_form(request, runtime, identity, status=status, reason=reason,
                                   reference=reference, next_path=next_path, now=now,
                                   error=error, locked_until=locked_until, pending=pending,
                                   reset=open_reset is not None), reason, False)

    if not csrf_valid(csrf_key(box), str(form.get("csrf", "")), identity.fingerprint, now):
        return again(403, Reason.CSRF_INVALID, "This form was too old or did not come from "
                     "this page. Please type the codes and your new password again.")
    if open_reset is None:
        return again(409, Reason.RESET_CLOSED, "There is no open password reset for you: "
                     "the set-up code was used already or has expired (it works for 24 "
                     "hours). Sign in with your password, or ask your administrator for a "
                     "new code.")
    password = str(form.get("password", ""))
    if password != str(form.get("repeat", "")):
        return again(400, Reason.FORM_INVALID, "The two new passwords are not the same. "
                     "Type the same new password in both fields.")
    try:
        check_policy(password)
    except WeakPasswordError as exc:
        return again(400, Reason.FORM_INVALID, f"That new password can't be used: {exc}.")
    subjects = failure_subjects(identity)
    locked = lock_end(await store.failures(subjects), now)
    if locked is not None:
        return again(429, Reason.LOCKED_OUT, locked_until=locked)

    # Opened once, before anything is counted or written: a secret this key can't open
    # refuses here rather than after the new password is stored.
    secret = open_secret(runtime, box, identity, totp)
    if secret is None:
        return refused(request, Reason.MFA_UNAVAILABLE, 403, reference)
    attempt = await reserve(runtime, identity, now)  # counted before it is checked
    if not attempt.checkable:
        return again(429, Reason.LOCKED_OUT, locked_until=attempt.locked_until)
    code = str(form.get("reset_code", ""))
    code_hash = open_reset.code_hash
    code_ok = await asyncio.to_thread(
        lambda: code_matches(code_hash if well_formed(code) else _decoy(), code))
    step: int | None = None
    if not pending:
        step = accepted_step(secret, str(form.get("code", "")), now=now,
                             after_step=totp.last_step)
    if not code_ok or (not pending and (step is None or not await store.accept_totp_step(
            identity.user, step))):
        if attempt.locked_until is not None:
            note_lock(runtime, identity, attempt.locked_until, reference=reference,
                      source_ip=request.remote, now=now)
            return again(429, Reason.LOCKED_OUT, locked_until=attempt.locked_until)
        return again(401, Reason.RESET_FAILED, "The set-up code or the code from your "
                     "authenticator app is not right. Check both and try again."
                     if not pending else "The set-up code is not right. Check it and try "
                     "again.")

    password_hash = await asyncio.to_thread(hash_password, password)
    if not await store.complete_password_reset(identity.user, code_hash, password_hash,
                                               now=now):
        open_reset = None  # spent meanwhile (another tab, another node)
        await give_back(runtime, identity, now)
        return again(409, Reason.RESET_CLOSED, "This set-up code was just used. Sign in "
                     "with the password you chose, or ask your administrator for a new code.")
    if pending:
        # The password is set; the authenticator comes next, as after the enrollment
        # page's password step: the count stays until its first code proves the app.
        await give_back(runtime, identity, now)
        response = enroll_page(request, runtime, identity, status=200, secret=secret,
                               token=enroll_token(box, identity, totp, now),
                               csrf=csrf_token(csrf_key(box), identity.fingerprint, now),
                               next_path=next_path, reference=reference)
        return Answer(response, Reason.RESET_COMPLETED, True)
    await store.clear_failures(subjects)
    response = web.Response(status=303, headers={"Location": next_path,
                                                 "Cache-Control": "no-store"})
    factors = ("mtls", "pwd", "otp")  # the password just chosen
    await start_session(request, runtime, identity, factors, now, response)
    return Answer(response, Reason.RESET_COMPLETED, True, factors_label(factors))
