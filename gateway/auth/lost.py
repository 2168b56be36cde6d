""""I lost my USB stick": ``/.certgate/lost`` stops a certificate with its stop code.

Answered on the public listener *without* a client certificate (the person no longer
has it). GET shows a plain form; POST takes the user name and the stop code
printed at issue (``gateway.auth.stopcodes``) and, when they match an active
certificate of that user whose code is unused:

1. marks the code used (a conditional write: once, on any node),
2. suspends the certificate in the same transaction -- the status move of
   ``certgate cert suspend``: certificateHold in the store, its ``cert`` event reaches
   every node through the change feed, its sessions end; then the CRL is republished
   (``gateway.manage.crl.republish_crl``) when the CA key is at hand, and OCSP says
   revoked/certificateHold,
3. tells the admin: an ERROR log line, ``certgate_lost_attempts_total{result="stopped"}``,
   a ``cert.lost`` audit record (user, serial, source address), a JSON POST to
   ``lost.webhook_url`` and a plain-text e-mail to ``lost.email_to`` (through
   ``gateway.ops.mail``) when configured (in the background, never holding up the
   page; each delivery is a log line and a metric, not an audit record),
4. says so in plain words: "Your certificate ending …ABCD is stopped."

Guessing is bounded: every POST is counted *before* anything is checked, per source
address and per user name, in memory on this node (``lost.max_per_address``,
``lost.max_per_user`` per ``lost.window``): N nodes behind a balancer allow N times
as many tries, which the 59-bit codes make irrelevant. At most two codes are checked
at once per node (argon2id costs memory and CPU), so a flood queues instead of
exhausting the host. An unknown user, a wrong code and a used code give the same
page, and each costs one argon2id check (a decoy for an unknown user), so the
answer and its time tell nothing about which part was wrong.

CSRF: a double-submit token. GET sets a random ``__Host-`` cookie; the form's token
is an HMAC over it (``gateway.auth.csrf``) with the secrets key (shared by every node)
or, without one, a key of this process.

Must not log, record or store a stop code in the clear.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from gateway.audit.record import AuditRecord
from gateway.auth.csrf import csrf_token, csrf_valid
from gateway.auth.login import MAX_FORM, Answer, read_form
from gateway.auth.passwords import decoy_hash
from gateway.auth.stopcodes import code_matches, well_formed
from gateway.http.pages import html_page
from gateway.manage.ca import CaLoader, load_online_ca
from gateway.manage.crl import republish_crl
from gateway.ops.mail import Letter
from gateway.store.db import serial_hex
from pki.ca import CertificateAuthority
from pki.keys import PkiError
from policies.model import Reason

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.runtime import Runtime

LOST_PATH = "/.certgate/lost"
COOKIE = "__Host-certgate-lost"
CHECKS_AT_ONCE = 2
_MAX_KEYS = 50_000  # counters kept per node before the oldest windows are dropped


class Attempts:
    """Tries per key within a sliding window, in memory (one node's view)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[datetime]] = {}

    def take(self, key: str, limit: int, window: timedelta, now: datetime) -> bool:
        """Count one try for ``key``; False when it is over ``limit`` within ``window``."""
        if len(self._seen) > _MAX_KEYS:
            self._sweep(window, now)
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        times.append(now)
        return len(times) <= limit

    def _sweep(self, window: timedelta, now: datetime) -> None:
        stale = [k for k, times in self._seen.items() if not times or times[-1] <= now - window]
        for key in stale:
            del self._seen[key]
        if len(self._seen) > _MAX_KEYS:  # a flood from many addresses: start afresh
            self._seen.clear()


class LostDesk:
    """This node's counters, check slots, fallback CSRF key and webhook deliveries."""

    def __init__(self) -> None:
        self.by_address = Attempts()
        self.by_user = Attempts()
        self.checks = asyncio.Semaphore(CHECKS_AT_ONCE)
        self.fallback_key = secrets.token_bytes(32)
        self._deliveries: set[asyncio.Task[None]] = set()

    def notify(self, runtime: Runtime, payload: dict[str, Any]) -> None:
        """POST ``payload`` to ``lost.webhook_url`` in the background, if one is set."""
        cfg = runtime.state.config.lost
        if cfg.webhook_url is None:
            return
        task = asyncio.create_task(_deliver(runtime, cfg.webhook_url,
                                            cfg.webhook_timeout.total_seconds(), payload))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def close(self) -> None:
        """Give deliveries in flight a moment, then cancel the rest."""
        if self._deliveries:
            _, pending = await asyncio.wait(set(self._deliveries), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def mail_admin(runtime: Runtime, user: str, serial: str, source: str, now: datetime) -> None:
    """E-mail ``lost.email_to`` that ``serial`` was stopped, if mail is set up."""
    config = runtime.state.config
    if config.mail is None or not config.lost.email_to:
        return
    at = now.strftime("%Y-%m-%d %H:%M:%S UTC")
    body = (f"The certificate {serial} of {user} was stopped with its stop code at {at} "
            f"from {source or 'an unknown address'}.\n\n"
            "It is suspended (certificateHold): it opens nothing until you decide.\n\n"
            f"- Found again? Resume it:  certgate cert resume {serial}\n"
            f"- Stays lost? Revoke it:   certgate cert revoke {serial} --reason "
            "keyCompromise\n  and issue a new one:    certgate cert issue " + user + "\n\n"
            f"(gateway node {runtime.audit.node}; the audit trail has a cert.lost record.)\n")
    letter = Letter("lost", config.lost.email_to,
                    f"Certificate {serial} of {user} was stopped with its stop code", body)
    runtime.postbox.send(config.mail, letter, now, f"about stopped certificate {serial}")


async def _deliver(runtime: Runtime, url: str, seconds: float, payload: dict[str, Any]) -> None:
    """One webhook POST; every failure is logged and counted, never raised."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as http, \
                http.post(url, json=payload) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"answered HTTP {resp.status}")
        runtime.metrics.lost_webhook.labels("sent").inc()
    except asyncio.CancelledError:
        runtime.metrics.lost_webhook.labels("failed").inc()
        raise
    except Exception as exc:  # a webhook must never take anything down
        runtime.metrics.lost_webhook.labels("failed").inc()
        runtime.log.warning("lost.webhook_url %s: the notification of a stopped certificate "
                            "(serial %s) was not delivered: %s", url, payload.get("serial"),
                            exc or type(exc).__name__)


def _key(runtime: Runtime) -> bytes:
    box = runtime.secret_box()
    return box.derived_key("lost") if box is not None else runtime.lost.fallback_key


def _form(runtime: Runtime, request: web.Request, reference: str, *, status: int, now: datetime,
          user: str = "", error: str | None = None) -> web.Response:
    """The form, with a fresh cookie and token (a new cookie when the browser sent none)."""
    cookie = request.cookies.get(COOKIE) or ""
    fresh = len(cookie) != 43  # token_urlsafe(32): anything else is not ours
    if fresh:
        cookie = secrets.token_urlsafe(32)
    response = html_page("lost.html", status, title="Stop a lost certificate",
                         csrf=csrf_token(_key(runtime), f"lost:{cookie}", now), user=user,
                         error=error, helpdesk=runtime.state.config.auth.helpdesk,
                         reference=reference)
    if fresh:
        response.set_cookie(COOKIE, cookie, secure=True, httponly=True, samesite="Strict",
                            path="/")
    return response


def _refused(runtime: Runtime, request: web.Request, reference: str, now: datetime,
             user: str) -> Answer:
    """One answer for an unknown user, a wrong code and a used one."""
    runtime.metrics.lost_attempts.labels("refused").inc()
    error = ("That user name and stop code do not match a certificate that can be stopped "
             "(or that code was already used). Check both and try again: the code is on the "
             "paper you got with your certificate, like k7m2-pq9x-w4ab.")
    return Answer(_form(runtime, request, reference, status=403, now=now, user=user,
                        error=error), Reason.LOST_REFUSED, False)


def _limited(runtime: Runtime, reference: str) -> Answer:
    runtime.metrics.lost_attempts.labels("limited").inc()
    cfg = runtime.state.config
    minutes = int(cfg.lost.window.total_seconds() // 60)
    advice = (f"Too many tries from here. Wait {minutes} minutes and try again, or call "
              f"{cfg.auth.helpdesk} and ask them to stop your certificate.")
    return Answer(html_page("refusal.html", 429, title="Too many tries", message=advice,
                            advice=None, reference=reference, help_link=False),
                  Reason.LOST_LIMITED, False)


def _matching_serial(hashes: list[tuple[int, str]], code: str) -> int | None:
    """The serial whose hash ``code`` matches. Runs in a worker thread: at least one
    argon2id check whatever the input, so timing does not tell an unknown user apart."""
    if not hashes or not well_formed(code):
        code_matches(decoy_hash(), code or "-")
        return None
    for serial, stored in hashes:
        if code_matches(stored, code):
            return serial
    return None


async def _ca_loader(config: Config) -> CaLoader:
    """The online CA read in a worker thread (key files, a passphrase file), or the
    reason it can't be, raised when ``republish_crl`` calls the loader."""
    try:
        ca = await asyncio.to_thread(load_online_ca, config)
    except PkiError as exc:
        failure = exc

        def refuse() -> CertificateAuthority:
            raise failure

        return refuse
    return lambda: ca


async def lost(request: web.Request, runtime: Runtime, reference: str) -> Answer:
    """GET: the form. POST: user name + stop code -> the certificate is stopped, or not."""
    now = runtime.clock()
    if request.method in ("GET", "HEAD"):
        return Answer(_form(runtime, request, reference, status=200, now=now),
                      Reason.LOST_PAGE, True)
    if request.method != "POST":
        return Answer(html_page("refusal.html", 405, title="Request not accepted",
                                message="This page takes a form from a browser.", advice=None,
                                reference=reference, help_link=False),
                      Reason.METHOD_NOT_ALLOWED, False)
    if request.content_length is None or request.content_length > MAX_FORM:
        runtime.metrics.lost_attempts.labels("invalid").inc()
        return Answer(_form(runtime, request, reference, status=413, now=now,
                            error="The form was too large. Please fill it in again."),
                      Reason.BODY_TOO_LARGE, False)
    form = await read_form(request)
    if form is None:
        runtime.metrics.lost_attempts.labels("invalid").inc()
        return Answer(_form(runtime, request, reference, status=400, now=now,
                            error="The form could not be read. Please fill it in again."),
                      Reason.FORM_INVALID, False)
    user = str(form.get("user", "")).strip()[:64]
    code = str(form.get("code", ""))[:64]
    cookie = request.cookies.get(COOKIE, "")
    if not cookie or not csrf_valid(_key(runtime), str(form.get("csrf", "")),
                                    f"lost:{cookie}", now):
        runtime.metrics.lost_attempts.labels("invalid").inc()
        return Answer(_form(runtime, request, reference, status=403, now=now, user=user,
                            error="This form was open too long or did not come from this "
                            "page. Please type your user name and stop code again."),
                      Reason.CSRF_INVALID, False)

    # Counted before anything is checked; an address over its limit is not counted
    # against the user it names.
    cfg = runtime.state.config.lost
    source = request.remote or ""
    desk = runtime.lost
    if not desk.by_address.take(source, cfg.max_per_address, cfg.window, now) or \
            not desk.by_user.take(user.lower(), cfg.max_per_user, cfg.window, now):
        runtime.log.warning("ref %s: too many stop-code tries from %s or for user %r",
                            reference, source, user, extra={"reference": reference})
        return _limited(runtime, reference)

    async with desk.checks:
        hashes = await runtime.store.stop_code_hashes(user) if user else []
        serial = await asyncio.to_thread(_matching_serial, hashes, code)
    stopped = None if serial is None else \
        await runtime.store.suspend_with_stop_code(serial, now=now)
    if serial is None or stopped is None:
        return _refused(runtime, request, reference, now, user)

    config = runtime.state.config
    cert, changed = stopped
    if changed:
        crl_note = (await republish_crl(runtime.store, config,
                                        await _ca_loader(config), now=now)).problem
    else:  # suspended or revoked meanwhile (an admin, another tab): stopped either way
        crl_note = f"the certificate was already {cert.status.value}"
    serial_text = serial_hex(serial)
    runtime.metrics.lost_attempts.labels("stopped").inc()
    runtime.log.error("certificate %s of user %s was STOPPED (suspended) with its stop code "
                      "from %s, ref %s: resume it with `certgate cert resume %s` if it was "
                      "found, or revoke it", serial_text, user, source, reference, serial_text,
                      extra={"reference": reference})
    record = AuditRecord.event(
        "cert.lost", now, reference=reference, reason="stop-code", user=user,
        detail={"node": runtime.audit.node, "action": "suspended",
                **({"crl": crl_note} if crl_note else {})})
    runtime.audit.emit(record._replace(serial=serial_text, source_ip=source))
    desk.notify(runtime, {"event": "cert.lost", "user": user, "serial": serial_text,
                          "source_ip": source, "at": now.isoformat(),
                          "node": runtime.audit.node, "reference": reference})
    mail_admin(runtime, user, serial_text, source, now)
    response = html_page("lost_done.html", 200, title="Your certificate is stopped",
                         ending=serial_text[-4:], user=user,
                         helpdesk=config.auth.helpdesk, reference=reference)
    return Answer(response, Reason.LOST_STOPPED, True)
