"""The decision half of the request story, one table row per case: no TLS, no sockets.

Each row is the plain facts of one request and what ``admit`` must answer: forward
(to which app and route, on which path, by which rule), one of the gateway's own
pages, or a refusal with its status and reason. The tables in memory are real: a
``CertificateIndex`` built from records, a ``Router`` and a ``PolicySet`` built
from a tiny config.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from gateway.auth.sessions import COOKIE, SessionIndex, SessionLimits, session_hash
from gateway.config import AppConfig
from gateway.http.admit import Admission, Facts, Page, Refusal, admit, host_from_header
from gateway.http.routing import Router
from gateway.identity.index import CertificateIndex
from gateway.store.records import (
    CertRecord,
    CertStatus,
    IdentitySnapshot,
    SessionRecord,
    UserRecord,
)
from policies.loader import build_policy_set
from policies.model import PolicySet
from policies.model import Reason as R

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday
UP = "http://10.0.0.5:8080"

APPS: list[dict[str, Any]] = [
    {"name": "wiki", "host": "wiki.test", "upstream": UP, "allow": [{"groups": ["staff"]}],
     "deny": [{"paths": ["/admin"]}], "routes": [{"path": "/api", "upstream": UP}]},
    {"name": "pbx", "host": "pbx.test", "upstream": UP, "ports": [8003],
     "allow": [{"users": ["carol"], "methods": ["GET"], "source_networks": ["192.0.2.0/24"]}]},
    {"name": "mfa", "host": "mfa.test", "upstream": UP, "allow": [{"everyone": True}],
     "mfa": "required"},
    {"name": "fresh", "host": "fresh.test", "upstream": UP, "allow": [{"everyone": True}],
     "mfa": "required", "mfa_max_age": "15m"},
    {"name": "servlet", "host": "servlet.test", "upstream": UP, "path_parameters": "allow",
     "allow": [{"everyone": True}], "deny": [{"paths": ["/private"]}]},
    {"name": "win", "host": "win.test", "upstream": UP, "path_case": "insensitive",
     "extra_methods": ["PURGE"],
     "allow": [{"everyone": True}], "deny": [{"paths": ["/admin"]}]},
]

USERS = {"alice": ("staff",), "bob": ("sales",), "carol": ("ops",), "dave": ("staff",)}
# fingerprint -> (user, status, not_before, not_after)
CERTS = {
    "a" * 64: ("alice", CertStatus.ACTIVE, NOW - timedelta(days=1), NOW + timedelta(days=1)),
    "b" * 64: ("bob", CertStatus.ACTIVE, NOW - timedelta(days=1), NOW + timedelta(days=1)),
    "c" * 64: ("carol", CertStatus.ACTIVE, NOW - timedelta(days=1), NOW + timedelta(days=1)),
    "d" * 64: ("dave", CertStatus.ACTIVE, NOW - timedelta(days=1), NOW + timedelta(days=1)),
    "e" * 64: ("alice", CertStatus.REVOKED, NOW - timedelta(days=1), NOW + timedelta(days=1)),
    "f" * 64: ("alice", CertStatus.SUSPENDED, NOW - timedelta(days=1), NOW + timedelta(days=1)),
    "1" * 64: ("alice", CertStatus.ACTIVE, NOW - timedelta(days=2), NOW - timedelta(seconds=1)),
    "2" * 64: ("alice", CertStatus.ACTIVE, NOW + timedelta(seconds=1), NOW + timedelta(days=2)),
}
ALICE, BOB, CAROL, DAVE, REVOKED, SUSPENDED, EXPIRED, EARLY = CERTS
UNKNOWN = "0" * 64


class Tables(NamedTuple):
    router: Router
    policy_set: PolicySet


@pytest.fixture(scope="module")
def tables() -> Tables:
    apps = [AppConfig.model_validate(a) for a in APPS]
    return Tables(Router(apps), build_policy_set(apps))


@pytest.fixture(scope="module")
def index() -> CertificateIndex:
    users = tuple(UserRecord(name, None, name != "dave", groups, None, NOW)
                  for name, groups in USERS.items())
    certs = tuple(CertRecord(serial=n, user=user, fingerprint=fp, subject=f"CN={user}",
                             not_before=nb, not_after=na, status=status, issued_at=NOW, pem="")
                  for n, (fp, (user, status, nb, na)) in enumerate(CERTS.items(), 1))
    return CertificateIndex.from_snapshot(IdentitySnapshot(users, certs, last_event_id=0))


def facts(path: str = "/", *, fp: str | None = ALICE, host: str = "wiki.test",
          sni: str | None = "", port: int = 8443, method: str = "GET",
          ip: str = "192.0.2.10", cookie: str | None = None) -> Facts:
    """One request's facts; the SNI is the Host's name unless the row says otherwise."""
    return Facts(fp, host, host_from_header(host) if sni == "" else sni, port, method, path, ip,
                 cookie)


# Alice signed in 20 minutes ago with this certificate: fine for "mfa", too old for "fresh".
ALICE_COOKIE = "alice-cookie-value"


@pytest.fixture
def sessions() -> SessionIndex:
    return SessionIndex(SessionLimits(), [SessionRecord(
        session_hash(ALICE_COOKIE), "alice", ALICE, NOW - timedelta(minutes=20),
        NOW - timedelta(minutes=1), NOW - timedelta(minutes=20), ("mtls", "pwd", "otp"))])


def summary(result: Admission | Page | Refusal) -> tuple[Any, ...]:
    user = result.identity.user if result.identity is not None else None
    if isinstance(result, Admission):
        return ("forward", result.app.name, result.route.prefix, result.path, result.rule, user)
    if isinstance(result, Page):
        return ("page", result.path, result.reason, user)
    return (result.status, result.reason, result.path, result.app, result.rule, user)


def fwd(app: str, path: str, rule: str, route: str = "/", user: str = "alice"
        ) -> tuple[Any, ...]:
    return ("forward", app, route, path, rule, user)


def no(status: int, reason: R, path: str = "/", app: str | None = None, rule: str | None = None,
       user: str | None = "alice") -> tuple[Any, ...]:
    return (status, reason, path, app, rule, user)


ROWS: list[tuple[str, Facts, tuple[Any, ...]]] = [
    # -- allowed: to the app, on the route, by the rule, on the normal form of the path
    ("allowed", facts(), fwd("wiki", "/", "wiki.allow[0]")),
    ("longest-route", facts("/api/v1"), fwd("wiki", "/api/v1", "wiki.allow[0]", "/api")),
    ("route-on-segments", facts("/apix"), fwd("wiki", "/apix", "wiki.allow[0]")),
    ("host-case-and-port", facts(host="WIKI.test:8443", sni="wiki.test"),
     fwd("wiki", "/", "wiki.allow[0]")),
    ("no-sni-for-ip", facts(sni=None), fwd("wiki", "/", "wiki.allow[0]")),
    ("dot-segments", facts("/a/../docs//x"), fwd("wiki", "/docs/x", "wiki.allow[0]")),
    ("escaped-unreserved", facts("/%7Ealice"), fwd("wiki", "/~alice", "wiki.allow[0]")),
    # -- the path: refused when it could be read two ways, before anything else
    ("encoded-slash", facts("/a%2fb"), no(400, R.AMBIGUOUS_PATH, "/a%2fb")),
    ("backslash", facts("/a\\b"), no(400, R.AMBIGUOUS_PATH, "/a\\b")),
    ("above-root", facts("/../etc"), no(400, R.AMBIGUOUS_PATH, "/../etc")),
    ("params-refused", facts("/docs;x"), no(400, R.AMBIGUOUS_PATH, "/docs;x")),
    ("ambiguous-before-identity", facts("/a%2fb", fp=None),
     no(400, R.AMBIGUOUS_PATH, "/a%2fb", user=None)),
    ("audit-path-cut", facts("/%2f" + "a" * 3000),
     no(400, R.AMBIGUOUS_PATH, ("/%2f" + "a" * 3000)[:2048])),
    # -- identity: checked on every request, at the caller's time
    ("no-certificate", facts(fp=None), no(401, R.NO_CERTIFICATE, user=None)),
    ("unknown-certificate", facts(fp=UNKNOWN), no(403, R.UNKNOWN_CERTIFICATE, user=None)),
    ("revoked", facts(fp=REVOKED), no(403, R.CERTIFICATE_REVOKED, user="alice")),
    ("suspended", facts(fp=SUSPENDED), no(403, R.CERTIFICATE_SUSPENDED, user="alice")),
    ("expired", facts(fp=EXPIRED), no(403, R.CERTIFICATE_EXPIRED, user="alice")),
    ("not-yet-valid", facts(fp=EARLY), no(403, R.CERTIFICATE_NOT_YET_VALID, user="alice")),
    ("user-disabled", facts(fp=DAVE), no(403, R.USER_DISABLED, user="dave")),
    ("refused-identity-on-unknown-host", facts(fp=None, host="nope.test"),
     no(401, R.NO_CERTIFICATE, user=None)),
    ("revoked-on-a-page", facts("/.certgate/whoami", fp=REVOKED),
     no(403, R.CERTIFICATE_REVOKED, "/.certgate/whoami", user="alice")),
    # -- public pages: all a request without a valid identity may see
    ("help-without-cert", facts("/.certgate/help", fp=None),
     ("page", "/.certgate/help", R.PUBLIC_PAGE, None)),
    ("jwks-with-revoked", facts("/.certgate/jwks.json", fp=REVOKED),
     ("page", "/.certgate/jwks.json", R.PUBLIC_PAGE, None)),
    ("lost-without-cert", facts("/.certgate/lost", fp=None),
     ("page", "/.certgate/lost", R.PUBLIC_PAGE, None)),
    ("lost-with-revoked", facts("/.certgate/lost", fp=REVOKED),
     ("page", "/.certgate/lost", R.PUBLIC_PAGE, None)),
    ("lost-with-cert", facts("/.certgate/lost"), ("page", "/.certgate/lost", R.BUILTIN, "alice")),
    ("lost-subpath-without-cert", facts("/.certgate/lost/x", fp=None),
     no(401, R.NO_CERTIFICATE, "/.certgate/lost/x", user=None)),
    ("whoami-without-cert", facts("/.certgate/whoami", fp=None),
     no(401, R.NO_CERTIFICATE, "/.certgate/whoami", user=None)),
    # -- the Host must be the name the TLS connection was opened for
    ("sni-mismatch", facts(sni="pbx.test"), no(421, R.SNI_HOST_MISMATCH)),
    ("sni-mismatch-on-page", facts("/.certgate/whoami", sni="pbx.test"),
     no(421, R.SNI_HOST_MISMATCH, "/.certgate/whoami")),
    # -- the gateway's own pages: on every host, never forwarded
    ("whoami", facts("/.certgate/whoami"), ("page", "/.certgate/whoami", R.BUILTIN, "alice")),
    ("help-with-cert", facts("/.certgate/help"),
     ("page", "/.certgate/help", R.BUILTIN, "alice")),
    ("page-on-unknown-host", facts("/.certgate/whoami", host="nope.test"),
     ("page", "/.certgate/whoami", R.BUILTIN, "alice")),
    ("page-after-dot-segments", facts("/docs/../.certgate/whoami"),
     ("page", "/.certgate/whoami", R.BUILTIN, "alice")),
    ("login-page", facts("/.certgate/login"), ("page", "/.certgate/login", R.BUILTIN, "alice")),
    ("logout-page", facts("/.certgate/logout"),
     ("page", "/.certgate/logout", R.BUILTIN, "alice")),
    ("login-needs-a-certificate", facts("/.certgate/login", fp=None),
     no(401, R.NO_CERTIFICATE, "/.certgate/login", user=None)),
    ("unknown-page", facts("/.certgate/nope"), no(404, R.PAGE_NOT_FOUND, "/.certgate/nope")),
    ("bare-prefix", facts("/.certgate"), no(404, R.PAGE_NOT_FOUND, "/.certgate")),
    ("look-alike-prefix", facts("/.certgatex"), fwd("wiki", "/.certgatex", "wiki.allow[0]")),
    # -- a Host whose port is not a number is refused before it can reach an upstream
    ("host-port-not-a-number", facts(host="wiki.test:abc", sni="wiki.test"),
     no(400, R.INVALID_HOST)),
    ("host-port-empty-v6", facts(host="[::1", sni=None), no(400, R.INVALID_HOST)),
    ("host-two-ports", facts(host="wiki.test:1:2", sni="wiki.test"), no(400, R.INVALID_HOST)),
    # -- methods: only the standard and WebDAV ones, unless the app declares more
    ("trace-refused", facts(method="TRACE"), no(405, R.METHOD_NOT_ALLOWED, app="wiki")),
    ("connect-refused", facts(method="CONNECT"), no(405, R.METHOD_NOT_ALLOWED, app="wiki")),
    ("made-up-method", facts(method="GIT"), no(405, R.METHOD_NOT_ALLOWED, app="wiki")),
    ("webdav-method", facts(method="PROPFIND"), fwd("wiki", "/", "wiki.allow[0]")),
    ("declared-extra-method", facts(method="PURGE", host="win.test"),
     fwd("win", "/", "win.allow[0]")),
    # -- routes: default deny
    ("unknown-host", facts(host="nope.test"), no(404, R.ROUTE_NOT_FOUND)),
    ("no-host", facts(host="", sni=None), no(404, R.ROUTE_NOT_FOUND)),
    ("ipv6-host", facts(host="[::1]:8443", sni=None), no(404, R.ROUTE_NOT_FOUND)),
    ("app-not-on-extra-port", facts(port=8003), no(404, R.ROUTE_NOT_FOUND)),
    ("app-on-its-extra-port", facts(fp=CAROL, host="pbx.test", port=8003),
     fwd("pbx", "/", "pbx.allow[0]", user="carol")),
    ("extra-port-app-on-main", facts(fp=CAROL, host="pbx.test"),
     fwd("pbx", "/", "pbx.allow[0]", user="carol")),
    # -- policy: deny wins, nothing matching is a deny, the second factor fails closed
    ("outside-groups", facts(fp=BOB), no(403, R.NO_MATCHING_ALLOW_RULE, app="wiki", user="bob")),
    ("wrong-method", facts(fp=CAROL, host="pbx.test", method="POST"),
     no(403, R.NO_MATCHING_ALLOW_RULE, app="pbx", user="carol")),
    ("outside-network", facts(fp=CAROL, host="pbx.test", ip="198.51.100.7"),
     no(403, R.NO_MATCHING_ALLOW_RULE, app="pbx", user="carol")),
    ("unknown-peer-address", facts(fp=CAROL, host="pbx.test", ip=""),
     no(403, R.NO_MATCHING_ALLOW_RULE, app="pbx", user="carol")),
    ("ipv6-peer", facts(fp=CAROL, host="pbx.test", ip="2001:db8::1"),
     no(403, R.NO_MATCHING_ALLOW_RULE, app="pbx", user="carol")),
    ("denied-path", facts("/admin/x"),
     no(403, R.DENIED_BY_RULE, "/admin/x", "wiki", "wiki.deny[0]")),
    ("denied-after-normalising", facts("/docs/%2E%2E/admin"),
     no(403, R.DENIED_BY_RULE, "/admin", "wiki", "wiki.deny[0]")),
    ("case-sensitive-app", facts("/Admin"), fwd("wiki", "/Admin", "wiki.allow[0]")),
    ("case-insensitive-app", facts("/ADMIN/x", host="win.test"),
     no(403, R.DENIED_BY_RULE, "/ADMIN/x", "win", "win.deny[0]")),
    ("windows-trailing-dot", facts("/admin./x", host="win.test"),
     no(400, R.AMBIGUOUS_PATH, "/admin./x")),
    ("params-judged-without", facts("/private;jsessionid=1/x", host="servlet.test"),
     no(403, R.DENIED_BY_RULE, "/private;jsessionid=1/x", "servlet", "servlet.deny[0]")),
    ("params-forwarded-as-sent", facts("/public;v=2/x", host="servlet.test"),
     fwd("servlet", "/public;v=2/x", "servlet.allow[0]")),
    # -- the second factor: a live session of this certificate, recent enough
    ("mfa-without-session", facts(host="mfa.test"),
     no(401, R.MFA_REQUIRED, app="mfa", rule="mfa.allow[0]")),
    ("mfa-with-session", facts(host="mfa.test", cookie=f"a=1; {COOKIE}={ALICE_COOKIE}"),
     fwd("mfa", "/", "mfa.allow[0]")),
    ("mfa-cookie-with-another-certificate", facts(host="mfa.test", fp=BOB,
                                                  cookie=f"{COOKIE}={ALICE_COOKIE}"),
     no(401, R.MFA_REQUIRED, app="mfa", rule="mfa.allow[0]", user="bob")),
    ("mfa-forged-cookie", facts(host="mfa.test", cookie=f"{COOKIE}=forged"),
     no(401, R.MFA_REQUIRED, app="mfa", rule="mfa.allow[0]")),
    ("mfa-too-old-for-this-app", facts(host="fresh.test", cookie=f"{COOKIE}={ALICE_COOKIE}"),
     no(401, R.MFA_TOO_OLD, app="fresh", rule="fresh.allow[0]")),
    ("session-not-needed-elsewhere", facts(cookie=f"{COOKIE}=forged"),
     fwd("wiki", "/", "wiki.allow[0]")),
]


@pytest.mark.parametrize(("given", "expected"), [row[1:] for row in ROWS],
                         ids=[row[0] for row in ROWS])
def test_admit(tables: Tables, index: CertificateIndex, sessions: SessionIndex, given: Facts,
               expected: tuple[Any, ...]) -> None:
    assert summary(admit(given, tables, index, sessions, NOW)) == expected


@pytest.mark.parametrize(("now", "expected"), [
    (NOW, None),
    (NOW + timedelta(days=1) - timedelta(microseconds=1), None),
    (NOW + timedelta(days=1), R.CERTIFICATE_EXPIRED),
    (NOW - timedelta(days=1, microseconds=1), R.CERTIFICATE_NOT_YET_VALID),
])
def test_the_callers_clock_decides_validity(tables: Tables, index: CertificateIndex,
                                            now: datetime, expected: R | None) -> None:
    result = admit(facts(), tables, index, SessionIndex(SessionLimits()), now)
    assert (result.reason if isinstance(result, Refusal) else None) == expected


@pytest.mark.parametrize(("header", "host"), [
    ("wiki.test", "wiki.test"), ("Wiki.Test:8443", "wiki.test"), (" wiki.test ", "wiki.test"),
    ("[::1]:8443", "[::1]"), ("[::1]", "[::1]"), ("[::1", "[::1"), ("", ""),
    ("127.0.0.1:80", "127.0.0.1"),
])
def test_host_from_header(header: str, host: str) -> None:
    assert host_from_header(header) == host
