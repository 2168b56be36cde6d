"""One sign-in on every app host: ``/.certgate/handoff``, a one-time, certificate-bound
hand-off between the app hosts of this gateway.

The session cookie is host-only on purpose (``__Host-``, never a parent-domain
cookie), so a sign-in on ``wiki`` is not sent to ``pbx``. Instead, as identity-aware
proxies do with a central sign-in host:

1. ``pbx`` needs the second factor and has no session, but the certificate has a
   live one on ``wiki``: the browser goes to ``https://wiki/.certgate/handoff?to=pbx``
   (``handoff_location``; only for a browser's GET, never for API clients, never for
   a step-up, which always asks for a fresh code on the host that wants it).
2. ``wiki`` checks its own cookie and that ``to`` is another app host of this
   gateway (never an arbitrary host: no open redirect), stores the SHA-256 of a new
   256-bit token bound to the certificate, ``pbx`` and the session, valid 60 s, and
   sends the browser to ``https://pbx/.certgate/handoff?token=…``.
3. ``pbx`` redeems the token (one conditional write: unused, unexpired, this
   certificate, this host; single-use across nodes) and starts a new session of its
   own: a new id, the origin's factors, second-factor time and creation time (the
   absolute lifetime is never extended), remembered as handed off from the origin.

Every failure ends on the sign-in page of the host the person wanted, never on
another hand-off (no redirect loops). Talks to the database only for steps 2 and 3,
like the sign-in pages. Never logs or records a token or a cookie: tokens travel
only in the query, which the audit record leaves out.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from gateway.auth.login import Answer, login_url, safe_next
from gateway.auth.sessions import COOKIE, cookie_value, new_session_secret
from gateway.http.admit import host_from_header
from gateway.http.pages import refusal
from gateway.identity.index import Identity
from gateway.store.records import HandoffRefusal
from policies.model import Reason

if TYPE_CHECKING:
    from gateway.runtime import Runtime

HANDOFF_PATH = "/.certgate/handoff"
TOKEN_TTL = timedelta(seconds=60)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 bits
_REFUSED = {
    HandoffRefusal.UNKNOWN: Reason.HANDOFF_INVALID,
    HandoffRefusal.USED: Reason.HANDOFF_USED,
    HandoffRefusal.EXPIRED: Reason.HANDOFF_EXPIRED,
    HandoffRefusal.OTHER_CERTIFICATE: Reason.HANDOFF_OTHER_CERTIFICATE,
    HandoffRefusal.OTHER_HOST: Reason.HANDOFF_OTHER_HOST,
    HandoffRefusal.ORIGIN_ENDED: Reason.HANDOFF_ORIGIN_ENDED,
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def browser_port(host_header: str) -> int | None:
    """The port in the Host header: the one the browser used, also behind a load
    balancer that maps it (None: the default, 443)."""
    header = host_header.strip()
    tail = header[header.find("]") + 1:] if header.startswith("[") else header
    _, colon, port = tail.rpartition(":") if ":" in tail else ("", "", "")
    return int(port) if colon and port.isdigit() else None


def origin_of(host: str, host_header: str) -> str:
    """``https://host[:port]``: another app host, reached the way this one was."""
    port = browser_port(host_header)
    return f"https://{host}" if port in (None, 443) else f"https://{host}:{port}"


def handoff_location(runtime: Runtime, identity: Identity, host_header: str, port: int,
                     path_qs: str, now: datetime) -> str | None:
    """Where to fetch the sign-in this certificate has on another app host of this
    gateway (published on this port too); None when it has none. Memory only."""
    router = runtime.state.router
    here = host_from_header(host_header)
    for session in runtime.sessions.elsewhere(identity.fingerprint, here, now):
        if session.host is not None and router.app_for(session.host, port) is not None:
            return (f"{origin_of(session.host, host_header)}{HANDOFF_PATH}"
                    f"?to={quote(here, safe='')}&next={quote(path_qs, safe='/')}")
    return None


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store",
                                             "Referrer-Policy": "no-referrer"})


def _local_port(request: web.Request) -> int:
    transport: Any = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return int(sockname[1]) if sockname else 0


async def handoff(request: web.Request, runtime: Runtime, identity: Identity,
                  reference: str) -> Answer:
    """GET with ``to``: hand this host's sign-in on; GET with ``token``: take one in."""
    if request.method != "GET":
        return Answer(refusal(request, status=405, reason=Reason.METHOD_NOT_ALLOWED,
                              reference=reference), Reason.METHOD_NOT_ALLOWED, False)
    next_path = safe_next(request.query.get("next"))
    token = request.query.get("token")
    if token is not None:
        return await _take(request, runtime, identity, token, next_path)
    return await _give(request, runtime, identity, reference, next_path)


async def _give(request: web.Request, runtime: Runtime, identity: Identity, reference: str,
                next_path: str) -> Answer:
    """At the host the person signed in on: mint a token for ``to`` and send it there."""
    now = runtime.clock()
    host_header = request.headers.get("Host", "")
    here = host_from_header(host_header)
    target = request.query.get("to", "")
    if (len(target) > 253 or target != target.lower() or target == here
            or runtime.state.router.app_for(target, _local_port(request)) is None):
        # Only to another app of this gateway: never an open redirect, never to itself.
        return Answer(refusal(request, status=400, reason=Reason.HANDOFF_BAD_TARGET,
                              reference=reference), Reason.HANDOFF_BAD_TARGET, False)
    there = origin_of(target, host_header)
    session = runtime.sessions.lookup(cookie_value(request.headers.get("Cookie", "")),
                                      identity.fingerprint, now)
    if session is None:
        # Not signed in here (any more): sign in there, never back to its hand-off.
        return Answer(_redirect(there + login_url(next_path)), Reason.HANDOFF_NO_SESSION,
                      False)
    token = secrets.token_urlsafe(32)
    await runtime.store.create_handoff(token_hash(token), fingerprint=identity.fingerprint,
                                       target_host=target, origin=session.id_hash,
                                       expires_at=now + TOKEN_TTL, now=now)
    location = f"{there}{HANDOFF_PATH}?token={token}&next={quote(next_path, safe='/')}"
    return Answer(_redirect(location), Reason.HANDOFF_ISSUED, True)


async def _take(request: web.Request, runtime: Runtime, identity: Identity, token: str,
                next_path: str) -> Answer:
    """At the host the person wants: redeem the token into a session of this host."""
    now = runtime.clock()
    here = host_from_header(request.headers.get("Host", ""))
    value, id_hash = new_session_secret()
    if _TOKEN.fullmatch(token):
        result = await runtime.store.redeem_handoff(
            token_hash(token), fingerprint=identity.fingerprint, host=here, now=now,
            new_id_hash=id_hash)
    else:
        result = HandoffRefusal.UNKNOWN  # no database read for what was never a token
    if isinstance(result, HandoffRefusal):
        return Answer(_redirect(login_url(next_path)), _REFUSED[result], False)
    runtime.sessions.put(result)  # this node at once; the others through the feed
    # A session of this host the browser still brought (same certificate) ends, as
    # at sign-in: one session per browser and host.
    prior = runtime.sessions.lookup(cookie_value(request.headers.get("Cookie", "")),
                                    identity.fingerprint, now)
    if prior is not None and prior.id_hash != result.id_hash:
        await runtime.store.end_sessions(id_prefix=prior.id_hash)
        runtime.sessions.drop(prior.id_hash)
    response = _redirect(next_path)
    response.set_cookie(COOKIE, value, secure=True, httponly=True, samesite="Lax", path="/")
    return Answer(response, Reason.HANDOFF_ACCEPTED, True)
