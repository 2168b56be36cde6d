"""The gateway's sign-in: ``/.certgate/login`` (password + TOTP or recovery code) and
``/.certgate/logout``.

The person is already known from the certificate; the page asks for the password
and a code and, on success, starts a new session (a new random id, never one the
browser brought) bound to that certificate, then sends the browser back to
``next`` (a path on the same host, nothing else). Failures never say which factor
was wrong; they count per user and per certificate, and too many within the window
lock sign-in for a while, on every node (the counters are in the database).
A person whose authenticator the admin left to them ("pending") sees a password-only
form that posts to the enrollment page (``gateway.auth.enroll``), which shares this
module's form, counters and session start; a person with an open password reset sees
the set-up code form that posts to ``gateway.auth.reset``, which shares them too.

A session remembers the host it was started on, so that ``gateway.auth.handoff``
can carry it to the other app hosts; sign-out ends every session of the
certificate, on every host.

This (with ``gateway.auth.enroll`` and ``gateway.auth.handoff``) is the one place on
the public listener that talks to the database: only for a sign-in, sign-out,
enrollment or hand-off, never for a proxied request. Password hashing runs in a
worker thread. Never logs or records a password, a code, a
recovery code or a cookie.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import datetime
from math import ceil
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote

from aiohttp import web

from gateway.auth.attempts import failure_subjects, lock_end, note_lock, reserve
from gateway.auth.csrf import csrf_token, csrf_valid
from gateway.auth.passwords import decoy_hash, verify_password
from gateway.auth.recovery import matching_code
from gateway.auth.secretbox import SecretBox, SecretBoxError
from gateway.auth.sessions import COOKIE, cookie_value, new_session_secret
from gateway.auth.totp import PENDING, accepted_step, normalise_code, secret_context
from gateway.http.admit import host_from_header
from gateway.http.exchange import factors_label
from gateway.http.pages import html_page, json_page, refusal, wants_json
from gateway.identity.index import Identity
from gateway.store.errors import StoreError
from gateway.store.records import SessionRecord, TotpRecord
from policies.model import Reason, describe

if TYPE_CHECKING:
    from gateway.runtime import Runtime

LOGIN_PATH = "/.certgate/login"
MAX_FORM = 4096
_NEXT = re.compile(r"^/(?![/\\])[^\s\\]*$")


class Answer(NamedTuple):
    """The response and what the audit record says about it."""

    response: web.Response
    reason: Reason
    allowed: bool
    factors: str | None = None  # what this request passed, when more than the certificate


def safe_next(value: str | None) -> str:
    """A same-host relative path to return to; anything else (``//evil``, ``https://…``,
    backslashes, the login page itself) falls back to ``/``."""
    if not value or len(value) > 2048 or not _NEXT.match(value):
        return "/"
    if value.split("?", 1)[0].rstrip("/") in (LOGIN_PATH, "/.certgate/logout",
                                              "/.certgate/handoff", "/.certgate/reset"):
        return "/"
    return value


async def read_form(request: web.Request) -> Mapping[str, object] | None:
    """The posted form, or None when it is not one a browser sends for these pages
    (another content type, bytes that are not UTF-8): a clear 400, not a crash."""
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        return await request.post()
    except ValueError:  # UnicodeDecodeError included
        return None


async def posted_form(request: web.Request, reference: str
                      ) -> Mapping[str, object] | Answer:
    """The browser form of a POST to one of these pages, or the refusal to answer
    instead: 405 for another method, 413 for a missing or oversized length, 400 for a
    body that is not such a form."""
    if request.method != "POST":
        status, reason = 405, Reason.METHOD_NOT_ALLOWED
    elif request.content_length is None or request.content_length > MAX_FORM:
        status, reason = 413, Reason.BODY_TOO_LARGE
    else:
        form = await read_form(request)
        if form is not None:
            return form
        status, reason = 400, Reason.FORM_INVALID
    return Answer(refusal(request, status=status, reason=reason, reference=reference,
                          limit=MAX_FORM if status == 413 else None), reason, False)


def refused(request: web.Request, reason: Reason, status: int, reference: str) -> Answer:
    """The refusal page for ``reason``, as this module's pages and the enrollment and
    reset pages answer when they can't go on (no secrets key, no authenticator)."""
    return Answer(refusal(request, status=status, reason=reason, reference=reference),
                  reason, False)


def open_secret(runtime: Runtime, box: SecretBox, identity: Identity,
                totp: TotpRecord) -> str | None:
    """The user's TOTP secret, or None (logged) when it does not open with this key."""
    try:
        return box.open(totp.secret_sealed, context=secret_context(identity.user))
    except SecretBoxError:
        runtime.log.error("the TOTP secret of %s does not open with this secrets key",
                          identity.user)
        return None


def login_url(path_qs: str) -> str:
    return f"{LOGIN_PATH}?next={quote(path_qs, safe='/')}"


def csrf_key(box: SecretBox) -> bytes:
    return box.derived_key("csrf")


def sign_in_form(request: web.Request, runtime: Runtime, identity: Identity, *, status: int,
                 reason: Reason, reference: str, next_path: str, now: datetime,
                 error: str | None = None, locked_until: datetime | None = None,
                 pending: bool = False, reset: bool = False) -> web.Response:
    """The sign-in page (password + code; password only while ``pending``; the set-up
    code and a new password while a password ``reset`` is open), or the lockout notice
    in its place."""
    config = runtime.state.config.auth
    if wants_json(request):
        data = {"error": reason.value, "message": error or describe(reason),
                "reference": reference, "status": status, "login": login_url(next_path)}
        if locked_until is not None:
            data["locked_until"] = locked_until.isoformat()
        return json_page(status, data)
    box = runtime.secret_box()
    assert box is not None  # login() answers before any form when there is none
    # The clock time alone means little at a kitchen table in another time zone.
    minutes = ceil((locked_until - now).total_seconds() / 60) if locked_until else None
    return html_page(
        "login.html", status, title="Sign in", site=request.url.host, person=identity.user,
        email=identity.email, helpdesk=config.helpdesk, error=error, reference=reference,
        next=next_path, csrf=csrf_token(csrf_key(box), identity.fingerprint, now),
        locked_until=locked_until.strftime("%H:%M UTC") if locked_until else None,
        locked_minutes=minutes, pending=pending, reset=reset)


async def login(request: web.Request, runtime: Runtime, identity: Identity,
                reference: str) -> Answer:
    """GET shows the form; POST checks it and starts a session."""
    now = runtime.clock()
    box = runtime.secret_box()
    if box is None:
        return refused(request, Reason.MFA_UNAVAILABLE, 403, reference)
    totp = await runtime.store.get_totp(identity.user)
    if totp is None:
        # Nothing to check a code against: say so, and count no failure.
        return refused(request, Reason.MFA_NOT_ENROLLED, 403, reference)
    reset = await runtime.store.open_password_reset(identity.user, now) is not None
    if request.method == "GET":
        next_path = safe_next(request.query.get("next"))
        try:
            failures = await runtime.store.failures(failure_subjects(identity))
        except StoreError:
            failures = {}
        return Answer(sign_in_form(request, runtime, identity, status=200,
                                   reason=Reason.LOGIN_PAGE, reference=reference,
                                   next_path=next_path, now=now,
                                   locked_until=lock_end(failures, now),
                                   pending=totp.state == PENDING, reset=reset),
                      Reason.LOGIN_PAGE, True)
    form = await posted_form(request, reference)
    if isinstance(form, Answer):
        return form
    next_path = safe_next(str(form.get("next", "")))

    def again(status: int, reason: Reason, error: str | None = None,
              locked_until: datetime | None = None) -> Answer:
        return Answer(sign_in_form(request, runtime, identity, status=status, reason=reason,
                                   reference=reference, next_path=next_path, now=now,
                                   error=error, locked_until=locked_until,
                                   pending=totp.state == PENDING, reset=reset), reason, False)

    if not csrf_valid(csrf_key(box), str(form.get("csrf", "")), identity.fingerprint, now):
        return again(403, Reason.CSRF_INVALID, "This form was too old or did not come from "
                     "this page. Please type your password and code again.")
    subjects = failure_subjects(identity)
    failures = await runtime.store.failures(subjects)
    locked = lock_end(failures, now)
    if locked is not None:
        return again(429, Reason.LOCKED_OUT, locked_until=locked)

    if reset:
        # The password was cleared with the reset: the form posts to the reset page.
        return again(409, Reason.RESET_PAGE, "Your administrator has set a password reset: "
                     "type the set-up code they gave you and choose a new password.")
    if totp.state == PENDING:
        # The code field is not there yet: the form for this person posts to the
        # enrollment page. Nothing was checked, so nothing counts as a failure.
        return again(409, Reason.ENROLL_PAGE, "First set up your authenticator app: "
                     "type your password below.")
    attempt = await reserve(runtime, identity, now)  # counted before it is checked
    if not attempt.checkable:
        return again(429, Reason.LOCKED_OUT, locked_until=attempt.locked_until)
    factor = await _check_factors(runtime, box, identity, totp, str(form.get("password", "")),
                                  str(form.get("code", "")), now)
    if factor is None:
        if attempt.locked_until is not None:
            note_lock(runtime, identity, attempt.locked_until, reference=reference,
                      source_ip=request.remote, now=now)
            return again(429, Reason.LOCKED_OUT, locked_until=attempt.locked_until)
        return again(401, Reason.LOGIN_FAILED, "The password or the code is not right. "
                     "Check both and try again.")

    await runtime.store.clear_failures(subjects)
    response = web.Response(status=303, headers={"Location": next_path,
                                                 "Cache-Control": "no-store"})
    factors = ("mtls", "pwd", factor)
    await start_session(request, runtime, identity, factors, now, response)
    return Answer(response, Reason.LOGIN_SUCCEEDED, True, factors_label(factors))


async def start_session(request: web.Request, runtime: Runtime, identity: Identity,
                        factors: tuple[str, ...], now: datetime,
                        response: web.StreamResponse) -> None:
    """A new session (a new random id) bound to this certificate, its cookie on
    ``response``; a session the browser brought from before (same certificate) ends
    everywhere: its id is never reused."""
    value, id_hash = new_session_secret()
    session = SessionRecord(id_hash, identity.user, identity.fingerprint, now, now, now,
                            factors, host=host_from_header(request.headers.get("Host", "")))
    await runtime.store.create_session(session)
    runtime.sessions.put(session)  # this node at once; the others through the feed
    old = cookie_value(request.headers.get("Cookie", ""))
    prior = runtime.sessions.lookup(old, identity.fingerprint, now) if old else None
    if prior is not None:
        await runtime.store.end_sessions(id_prefix=prior.id_hash)
        runtime.sessions.drop(prior.id_hash)
    response.set_cookie(COOKIE, value, secure=True, httponly=True, samesite="Lax", path="/")


async def logout(request: web.Request, runtime: Runtime, identity: Identity,
                 reference: str) -> Answer:
    """POST with the token of the whoami page: ends every session of this certificate,
    on every app host (one sign-in covers them all, so does one sign-out), everywhere."""
    now = runtime.clock()
    value = cookie_value(request.headers.get("Cookie", ""))
    session = runtime.sessions.lookup(value, identity.fingerprint, now) if value else None
    box = runtime.secret_box()
    if request.method != "POST" or session is None or box is None:
        reason = Reason.METHOD_NOT_ALLOWED if request.method != "POST" else Reason.CSRF_INVALID
        return Answer(refusal(request, status=405 if request.method != "POST" else 403,
                              reason=reason, reference=reference), reason, False)
    form = (await read_form(request) if (request.content_length or 0) <= MAX_FORM else None) or {}
    if not csrf_valid(csrf_key(box), str(form.get("csrf", "")), logout_binding(session), now):
        return Answer(refusal(request, status=403, reason=Reason.CSRF_INVALID,
                              reference=reference), Reason.CSRF_INVALID, False)
    ended = await runtime.store.end_sessions(fingerprint=identity.fingerprint)
    for id_hash in {session.id_hash, *ended}:
        runtime.sessions.drop(id_hash)
    response = html_page("refusal.html", 200, title="Signed out",
                         message=describe(Reason.LOGGED_OUT),
                         advice="To carry on, open an application again and sign in. "
                                "On a shared computer, close the browser now.",
                         reference=reference, help_link=False)
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
    return Answer(response, Reason.LOGGED_OUT, True)


def logout_binding(session: SessionRecord) -> str:
    return f"logout:{session.id_hash}"


def logout_token(runtime: Runtime, session: SessionRecord, now: datetime) -> str | None:
    box = runtime.secret_box()
    return None if box is None else csrf_token(csrf_key(box), logout_binding(session), now)


async def check_password(runtime: Runtime, identity: Identity, password: str) -> bool:
    """The password holds (hashed in a worker thread; a user without one takes as long)."""
    user = await runtime.store.get_user(identity.user)
    ok = await asyncio.to_thread(verify_password, user.password_hash or decoy_hash(), password)
    return ok and user.password_hash is not None


async def _check_factors(runtime: Runtime, box: SecretBox, identity: Identity,
                         totp: TotpRecord, password: str, code: str,
                         now: datetime) -> str | None:
    """The second factor used ("otp" or "recovery") when both factors hold, else None.

    Both factors are always checked, so the time taken does not tell which failed.
    """
    store = runtime.store
    password_ok = await check_password(runtime, identity, password)
    if normalise_code(code) is not None:
        secret = open_secret(runtime, box, identity, totp)
        if secret is None:
            return None
        step = accepted_step(secret, code, now=now, after_step=totp.last_step)
        if step is None or not password_ok:
            return None
        # The conditional write: a code already used (on any node) is refused here.
        return "otp" if await store.accept_totp_step(identity.user, step) else None
    unused = await store.unused_recovery_codes(identity.user)
    found = await asyncio.to_thread(matching_code, code, [h for _, h in unused])
    if found is None or not password_ok:
        return None
    return "recovery" if await store.use_recovery_code(unused[found][0], now) else None
