"""The decision half of the request story: identity -> path -> route -> policy -> outcome.

``admit(facts, state, index, now)`` answers one request from plain values and the
tables in memory: forward it (``Admission``), answer with one of the gateway's own
pages (``Page``), or refuse it with a status and a ``Reason`` (``Refusal``). Every
result carries what the audit record needs (the path judged, the identity, the app
and the rule), so the story only copies it.

The order of the checks is part of the security model: the path is normalised
once, with the rules of the app the Host names, before anything else looks at it;
a request without a valid identity sees only the public pages; the Host must be the
name the TLS connection was opened for; nothing under ``/.certgate/`` is ever
forwarded; an unknown host is denied, and so is anything the policy does not allow.

Pure: no aiohttp, no I/O, no clock reads (the caller passes ``now``), no await.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import NamedTuple, Protocol

from gateway.auth.sessions import Session, SessionIndex, cookie_value
from gateway.http.paths import STRICT, AmbiguousPathError, judged_path, normalise_path
from gateway.http.routing import AppTarget, Router, RouteTarget
from gateway.identity.index import CertificateIndex, Identity
from policies.engine import evaluate
from policies.model import AccessRequest, Effect, PolicySet, Reason

BUILTIN = "/.certgate"
# What a request without (a known) certificate may still see.
# "/.certgate/lost" stops a lost certificate with its stop code (gateway.auth.lost).
LOST = "/.certgate/lost"
# "/.certgate/download" hands a new person their .p12 once (gateway.console.download).
DOWNLOAD = "/.certgate/download"
PUBLIC_PAGES = frozenset({"/.certgate/help", "/.certgate/jwks.json", LOST, DOWNLOAD})
LOGIN = "/.certgate/login"
LOGOUT = "/.certgate/logout"
HANDOFF = "/.certgate/handoff"  # one sign-in on every app host (gateway.auth.handoff)
ENROLL = "/.certgate/enroll"  # setting up the authenticator oneself (gateway.auth.enroll)
RESET = "/.certgate/reset"  # choosing a password with an admin's set-up code (gateway.auth.reset)
ME = "/.certgate/me"  # "My access" (gateway.console.me)
PAGES = PUBLIC_PAGES | {"/.certgate/whoami", LOGIN, LOGOUT, HANDOFF, ENROLL, RESET, ME}
_HOST_WITH_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+)(?::[0-9]{1,5})?")


class Facts(NamedTuple):
    """What ``admit`` needs to know of one request, as plain values."""

    fingerprint: str | None  # SHA-256 of the verified client certificate, if any
    host_header: str  # the Host header as sent ("" when absent)
    sni: str | None  # the server name of the TLS hello (None for IP addresses)
    port: int  # the local port the request arrived on
    method: str
    raw_path: str  # the request target without its query
    source_ip: str  # the peer's address ("" when unknown)
    cookie_header: str | None = None  # read only for apps that ask for the second factor


class Tables(Protocol):
    """The part of the swappable ``State`` that decisions read."""

    @property
    def router(self) -> Router: ...

    @property
    def policy_set(self) -> PolicySet: ...


class Admission(NamedTuple):
    """Forward to ``app``'s ``route``: the policy allowed ``identity`` on ``path``."""

    identity: Identity
    app: AppTarget
    route: RouteTarget
    host: str  # the Host, lower-cased and without its port
    path: str  # the normal form: judged and forwarded alike
    rule: str | None
    session: Session | None = None  # the login session, on apps that need one


class Page(NamedTuple):
    """Answer with the gateway's own page at ``path`` (one of ``PAGES``)."""

    path: str
    identity: Identity | None  # None on a public page seen without a valid certificate
    reason: Reason


class Refusal(NamedTuple):
    """Refuse with ``status`` and ``reason``; the rest is for the audit record."""

    status: int
    reason: Reason
    path: str
    identity: Identity | None = None
    app: str | None = None
    rule: str | None = None


def host_from_header(header: str) -> str:
    """The Host header lower-cased, without its port (``[::1]:8443`` -> ``[::1]``)."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


@lru_cache(maxsize=4096)
def _source_ip(remote: str) -> IPv4Address | IPv6Address:
    # Parsing an address costs more than the policy decision; clients repeat.
    return ip_address(remote or "0.0.0.0")  # noqa: S104 - "no address", never bound


def admit(facts: Facts, state: Tables, index: CertificateIndex, sessions: SessionIndex,
          now: datetime) -> Admission | Page | Refusal:
    """Decide one request; see the module docstring for the order of the checks."""
    # 1. Identity, from the certificate of this connection, checked now (keep-alive
    #    connections outlive certificates).
    resolved = index.resolve(facts.fingerprint, now)
    identity = None if isinstance(resolved, Reason) else resolved

    # 2. Path: one normal form, judged and forwarded alike, read the way the app's
    #    server reads paths (the Host picks the app; SNI is checked below).
    if ":" in facts.host_header and not _HOST_WITH_PORT.fullmatch(facts.host_header.strip()):
        # "wiki.test:abc" must not reach an upstream that builds URLs from the Host.
        return Refusal(400, Reason.INVALID_HOST, facts.raw_path[:2048], identity)
    host = host_from_header(facts.host_header)
    app = state.router.app_for(host, facts.port)
    try:
        path = normalise_path(facts.raw_path, app.path_rules if app is not None else STRICT)
    except AmbiguousPathError:
        return Refusal(400, Reason.AMBIGUOUS_PATH, facts.raw_path[:2048], identity)
    if isinstance(resolved, Reason):
        if path in PUBLIC_PAGES:
            return Page(path, None, Reason.PUBLIC_PAGE)
        # The audit record names whose certificate it was, even when it no longer counts.
        return Refusal(401 if resolved is Reason.NO_CERTIFICATE else 403, resolved, path,
                       index.holder(facts.fingerprint))

    # 3. Route: the Host must be the name the TLS connection was opened for; the
    #    gateway's own pages are answered on every host and never forwarded.
    if facts.sni is not None and facts.sni != host:
        return Refusal(421, Reason.SNI_HOST_MISMATCH, path, resolved)
    if path == BUILTIN or path.startswith(BUILTIN + "/"):
        if path in PAGES:
            return Page(path, resolved, Reason.BUILTIN)
        return Refusal(404, Reason.PAGE_NOT_FOUND, path, resolved)
    if app is None:
        return Refusal(404, Reason.ROUTE_NOT_FOUND, path, resolved)
    if facts.method not in app.methods:  # TRACE, CONNECT, made-up methods: never forwarded
        return Refusal(405, Reason.METHOD_NOT_ALLOWED, path, resolved, app.name)

    # 4. Policy: pure, in memory, on the path without ';' parameters. Only an app that
    #    asks for the second factor looks at the login session (bound to this
    #    certificate, within its idle and absolute lifetimes).
    session = None
    policy = state.policy_set.apps.get(host)
    if policy is not None and policy.may_need_mfa and facts.cookie_header:
        session = sessions.lookup(cookie_value(facts.cookie_header), resolved.fingerprint, now)
    decision = evaluate(state.policy_set, AccessRequest(
        host=host, method=facts.method, path=judged_path(path), user=resolved.user,
        groups=resolved.groups, source_ip=_source_ip(facts.source_ip), now=now,
        mfa_at=session.mfa_at if session is not None else None))
    if decision.effect is Effect.NEED_MFA:
        # 401 with MFA_REQUIRED or MFA_TOO_OLD: the story sends people to the login page.
        return Refusal(401, decision.reason, path, resolved, app.name, decision.rule)
    if decision.effect is Effect.DENY:
        return Refusal(403, decision.reason, path, resolved, app.name, decision.rule)
    return Admission(resolved, app, app.route_for(path), host, path, decision.rule, session)
