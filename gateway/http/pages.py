"""What people and API clients see when the gateway itself answers.

Refusals are plain HTML for browsers and JSON for ``Accept: application/json``;
both carry the reason and a reference id that matches the audit record, never
internal detail (no upstream addresses, no rule internals, no stack traces).

A new page of the gateway's own calls ``html_page`` (its template extends
``base.html``; its styles go into ``templates/pages.css``): that gives it the one
Content-Security-Policy of ``gateway.http.security``, which allows the stylesheet by
its hash and nothing inline besides. ``internal_error`` is the page for a fault of
ours: plain words and the reference, never the exception.

Must not decide anything: the request story passes the status and reason.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web

from gateway.http.security import HEADERS, PAGES_CSS
from gateway.identity.index import Identity
from policies.model import Reason, describe

_ENV = jinja2.Environment(
    # auto_reload=False: templates ship with the package; without it every render
    # stats two files, which a flood of refused requests would turn into disk load.
    loader=jinja2.PackageLoader("gateway", "templates"), autoescape=True, auto_reload=False,
    trim_blocks=True, lstrip_blocks=True)

_REFERENCES = random.Random()  # noqa: S311 - ids, not secrets
_clock = time.time
_random_bits = _REFERENCES.getrandbits

_TITLES = {
    401: "Certificate needed", 403: "Access denied", 400: "Bad request",
    404: "Not found", 405: "Request not accepted", 413: "Upload too large",
    421: "Wrong address", 500: "Something went wrong", 502: "Application unavailable",
    503: "Temporarily unavailable", 504: "Application too slow",
}

_ADVICE: dict[Reason, str] = {
    Reason.NO_CERTIFICATE: "Import the certificate file your administrator gave you into this "
                           "browser, then restart it.",
    Reason.UNKNOWN_CERTIFICATE: "Ask your administrator for a new certificate.",
    Reason.CERTIFICATE_REVOKED: "Contact your administrator for a new certificate.",
    Reason.CERTIFICATE_SUSPENDED: "If you found your device again, ask your administrator to "
                                  "resume the certificate.",
    Reason.CERTIFICATE_EXPIRED: "Ask your administrator to renew your certificate.",
    Reason.CERTIFICATE_NOT_YET_VALID: "Check this computer's clock, or wait until the "
                                      "certificate becomes valid.",
    Reason.USER_DISABLED: "Contact your administrator.",
    Reason.MFA_NOT_ENROLLED: "Ask your administrator to set up an authenticator app on your "
                             "phone for you; then open this application again.",
    Reason.MFA_UNAVAILABLE: "Tell your administrator: the gateway has no secrets key yet.",
    Reason.NO_MATCHING_ALLOW_RULE: "If you need this application, ask your administrator.",
    Reason.DENIED_BY_RULE: "If you need this, ask your administrator.",
    Reason.UPSTREAM_UNAVAILABLE: "Try again in a minute.",
    Reason.UPSTREAM_TIMEOUT: "Try again in a minute.",
    Reason.AUDIT_UNAVAILABLE: "Try again in a few minutes; if it lasts, tell your "
                              "administrator that the audit log cannot be written.",
    Reason.SIGN_IN_UNAVAILABLE: "Applications you are already signed in to keep working. "
                                "Try again in a few minutes; if it lasts, tell your "
                                "administrator.",
}


def new_reference() -> str:
    """A short id quoted on the page and stored in the audit record: 12 hex digits.

    It only has to be unique enough to find a record, not unguessable, so it uses
    the fast PRNG (seeded from the OS at start) instead of a syscall per request.
    The first 3 digits follow the clock (16-second steps, wrapping every 18 hours),
    the other 9 are random: the references of one moment sort together, so the
    audit table's index on them takes new entries in one place. Fully random ones
    put every new entry on a random page of that index (an eighth of an audit
    insert's CPU on SQLite at 600,000 records, docs/performance.md).
    """
    return "%012x" % ((int(_clock()) >> 4 & 0xFFF) << 36 | _random_bits(36))


def wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    if "application/json" not in accept:
        return False
    return "text/html" not in accept or accept.index("application/json") < accept.index(
        "text/html")


def html_page(template: str, status: int, **context: Any) -> web.Response:
    """A page from ``templates/`` (autoescaped, extending ``base.html``) with
    ``templates/pages.css`` inlined and the security headers of ``gateway.http.security``:
    the one way a public page of the gateway is answered."""
    body = _ENV.get_template(template).render(**context, css=PAGES_CSS.text)
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8",
                        headers=HEADERS)


def json_page(status: int, data: dict[str, Any]) -> web.Response:
    """A JSON answer of the gateway's own, with the security headers."""
    return web.Response(status=status, text=json.dumps(data), content_type="application/json",
                        headers=HEADERS)


def refusal(request: web.Request, *, status: int, reason: Reason, reference: str,
            limit: int | None = None) -> web.Response:
    message = describe(reason)
    if reason is Reason.BODY_TOO_LARGE and limit is not None:
        message = (f"The upload is larger than the gateway accepts for this application "
                   f"({_size(limit)}).")
    if wants_json(request):
        data: dict[str, Any] = {"error": reason.value, "message": message,
                                "reference": reference, "status": status}
        if limit is not None:
            data["limit_bytes"] = limit
        return json_page(status, data)
    return html_page("refusal.html", status, title=_TITLES.get(status, "Refused"),
                     message=message, advice=_ADVICE.get(reason), reference=reference,
                     help_link=reason in (Reason.NO_CERTIFICATE, Reason.UNKNOWN_CERTIFICATE))


def internal_error(request: web.Request, reference: str) -> web.Response:
    """500 for a fault of ours: plain words and the reference the log and the audit
    record carry; never the exception, its text or a traceback."""
    if wants_json(request):
        return json_page(500, {"error": Reason.INTERNAL_ERROR.value,
                               "message": "Something went wrong on the gateway. Tell your "
                                          f"administrator this reference: {reference}.",
                               "reference": reference, "status": 500})
    return html_page("refusal.html", 500, title=_TITLES[500],
                     message="Something went wrong on the gateway. It was not something "
                             "you did.",
                     advice="Try again in a minute. If it keeps happening, tell your "
                            "administrator the reference below.",
                     reference=reference, help_link=False)


def _size(n: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def help_page(request: web.Request) -> web.Response:
    return html_page("help.html", 200, title="Importing your certificate")


def whoami(request: web.Request, identity: Identity, *, logout_csrf: str | None = None,
           mfa_at: datetime | None = None) -> web.Response:
    groups = sorted(identity.groups)
    data: dict[str, Any] = {"user": identity.user, "groups": groups,
            "serial": identity.serial_hex, "not_after": identity.not_after.isoformat(),
            "email": identity.email}
    if wants_json(request):
        return json_page(200, data)
    return html_page("whoami.html", 200, title="Who am I", user=identity.user,
                     groups=", ".join(groups), serial=identity.serial_hex,
                     not_after=identity.not_after.strftime("%Y-%m-%d"),
                     logout_csrf=logout_csrf,
                     mfa_at=mfa_at.strftime("%Y-%m-%d %H:%M UTC") if mfa_at else None)


def jwks(request: web.Request, keys: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(keys), content_type="application/json",
                        headers={"Cache-Control": "public, max-age=300"})
