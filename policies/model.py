"""The access model: compiled rules, requests, decisions and the one vocabulary of reasons.

Everything here is plain frozen data built once at load time (``policies.loader``)
and read by the engine on every request, so matchers are precompiled.

No pydantic, no I/O, no clock reads.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Reason(StrEnum):
    """Why a request was answered the way it was: used by pages, audit and metrics alike.

    Values are what audit consumers and API clients see, so they never change; each
    member's name is its value upper-cased with ``-`` as ``_`` (a test keeps it so).
    """

    ALLOWED = "allowed"
    PUBLIC_PAGE = "public-page"
    BUILTIN = "builtin"
    NO_CERTIFICATE = "no-certificate"
    UNKNOWN_CERTIFICATE = "unknown-certificate"
    CERTIFICATE_REVOKED = "certificate-revoked"
    CERTIFICATE_SUSPENDED = "certificate-suspended"
    CERTIFICATE_EXPIRED = "certificate-expired"
    CERTIFICATE_NOT_YET_VALID = "certificate-not-yet-valid"
    USER_DISABLED = "user-disabled"
    ROUTE_NOT_FOUND = "route-not-found"
    PAGE_NOT_FOUND = "page-not-found"
    SNI_HOST_MISMATCH = "sni-host-mismatch"
    AMBIGUOUS_PATH = "ambiguous-path"
    INVALID_HOST = "invalid-host"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    NO_MATCHING_ALLOW_RULE = "no-matching-allow-rule"
    DENIED_BY_RULE = "denied-by-rule"
    MFA_REQUIRED = "mfa-required"
    MFA_TOO_OLD = "mfa-too-old"
    MFA_UNAVAILABLE = "mfa-unavailable"
    MFA_NOT_ENROLLED = "mfa-not-enrolled"
    LOGIN_PAGE = "login-page"
    LOGIN_SUCCEEDED = "login-succeeded"
    LOGIN_FAILED = "login-failed"
    LOCKED_OUT = "locked-out"
    LOGGED_OUT = "logged-out"
    CSRF_INVALID = "csrf-invalid"
    ENROLL_PAGE = "enroll-page"
    ENROLL_FAILED = "enroll-failed"
    ENROLL_EXPIRED = "enroll-expired"
    ENROLLED = "enrolled"
    ENROLL_CLOSED = "enroll-closed"
    RESET_PAGE = "reset-page"
    RESET_FAILED = "reset-failed"
    RESET_COMPLETED = "reset-completed"
    RESET_CLOSED = "reset-closed"
    FORM_INVALID = "form-invalid"
    BODY_TOO_LARGE = "body-too-large"
    UPSTREAM_UNAVAILABLE = "upstream-unavailable"
    UPSTREAM_TIMEOUT = "upstream-timeout"
    WEBSOCKETS_DISABLED = "websockets-disabled"
    INTERNAL_ERROR = "internal-error"
    BAD_REQUEST = "bad-request"
    AUDIT_UNAVAILABLE = "audit-unavailable"
    SIGN_IN_UNAVAILABLE = "sign-in-unavailable"
    # One sign-in on every app host: the hand-off between hosts.
    HANDOFF_SENT = "handoff-sent"
    HANDOFF_ISSUED = "handoff-issued"
    HANDOFF_ACCEPTED = "handoff-accepted"
    HANDOFF_NO_SESSION = "handoff-no-session"
    HANDOFF_BAD_TARGET = "handoff-bad-target"
    HANDOFF_INVALID = "handoff-invalid"
    HANDOFF_USED = "handoff-used"
    HANDOFF_EXPIRED = "handoff-expired"
    HANDOFF_OTHER_CERTIFICATE = "handoff-other-certificate"
    HANDOFF_OTHER_HOST = "handoff-other-host"
    HANDOFF_ORIGIN_ENDED = "handoff-origin-ended"
    # "I lost my USB stick": stopping a certificate with its stop code, without it.
    LOST_PAGE = "lost-page"
    LOST_STOPPED = "lost-stopped"
    LOST_REFUSED = "lost-refused"
    LOST_LIMITED = "lost-limited"
    # The console's one-time download link for a new person's .p12.
    DOWNLOAD_PAGE = "download-page"
    DOWNLOADED = "downloaded"
    DOWNLOAD_REFUSED = "download-refused"


_DESCRIPTIONS: Mapping[Reason, str] = {
    Reason.ALLOWED: "Access was granted.",
    Reason.PUBLIC_PAGE: "A gateway page anyone may see, with or without a certificate.",
    Reason.BUILTIN: "A page of the gateway itself.",
    Reason.NO_CERTIFICATE: "Your browser did not present a certificate.",
    Reason.UNKNOWN_CERTIFICATE: "Your certificate is not known to this gateway.",
    Reason.CERTIFICATE_REVOKED: "Your certificate has been revoked.",
    Reason.CERTIFICATE_SUSPENDED: "Your certificate is suspended.",
    Reason.CERTIFICATE_EXPIRED: "Your certificate has expired.",
    Reason.CERTIFICATE_NOT_YET_VALID: "Your certificate is not valid yet.",
    Reason.USER_DISABLED: "Your account is disabled.",
    Reason.ROUTE_NOT_FOUND: "No application is published under this address.",
    Reason.PAGE_NOT_FOUND: "The gateway has no page at this address.",
    Reason.SNI_HOST_MISMATCH: "The address you asked for does not match the connection.",
    Reason.AMBIGUOUS_PATH: "The address contains an ambiguous path.",
    Reason.INVALID_HOST: "The address (Host) in the request is malformed.",
    Reason.METHOD_NOT_ALLOWED: "This application does not accept this kind of request.",
    Reason.NO_MATCHING_ALLOW_RULE: "You are not allowed to use this application.",
    Reason.DENIED_BY_RULE: "Access to this part of the application is denied.",
    Reason.MFA_REQUIRED: "This application needs your password and a one-time code.",
    Reason.MFA_TOO_OLD: "Your second-factor login is too old for this application.",
    Reason.MFA_UNAVAILABLE: "This application needs a second factor, which this gateway "
                            "cannot check yet.",
    Reason.MFA_NOT_ENROLLED: "You have no authenticator app set up for the second factor yet.",
    Reason.LOGIN_PAGE: "The sign-in page was shown.",
    Reason.LOGIN_SUCCEEDED: "You are signed in.",
    Reason.LOGIN_FAILED: "The password or the code is not right.",
    Reason.LOCKED_OUT: "Sign-in is locked after too many failed attempts.",
    Reason.LOGGED_OUT: "You are signed out of every application of this gateway.",
    Reason.CSRF_INVALID: "The form was too old or did not come from this page.",
    Reason.ENROLL_PAGE: "The page to set up your authenticator app was shown.",
    Reason.ENROLL_FAILED: "The code from your authenticator app is not right.",
    Reason.ENROLL_EXPIRED: "The page to set up your authenticator app was open too long.",
    Reason.ENROLLED: "Your authenticator app is set up.",
    Reason.ENROLL_CLOSED: "Your authenticator app is already set up.",
    Reason.RESET_PAGE: "The page to choose a new password with a set-up code was shown.",
    Reason.RESET_FAILED: "The set-up code or the code from your authenticator app is not "
                         "right.",
    Reason.RESET_COMPLETED: "Your new password is set.",
    Reason.RESET_CLOSED: "There is no open password reset for you: the set-up code was "
                         "used already or has expired.",
    Reason.FORM_INVALID: "The form could not be read. Please go back and fill it in again.",
    Reason.BODY_TOO_LARGE: "The upload is larger than this application accepts.",
    Reason.UPSTREAM_UNAVAILABLE: "The application is not reachable right now.",
    Reason.UPSTREAM_TIMEOUT: "The application took too long to answer.",
    Reason.WEBSOCKETS_DISABLED: "This application does not accept WebSocket connections.",
    Reason.BAD_REQUEST: "The request is not valid HTTP.",
    Reason.INTERNAL_ERROR: "The gateway failed while answering; quote the reference to "
                           "your administrator.",
    Reason.AUDIT_UNAVAILABLE: "The gateway cannot record access right now, and this site "
                              "allows no access that is not recorded.",
    Reason.SIGN_IN_UNAVAILABLE: "Signing in is not possible right now: the gateway cannot "
                                "reach its database.",
    Reason.HANDOFF_SENT: "You are signed in on another application of this gateway; your "
                         "browser was sent there to bring that sign-in here.",
    Reason.HANDOFF_ISSUED: "Your sign-in was handed on to another application of this "
                           "gateway.",
    Reason.HANDOFF_ACCEPTED: "You are signed in here with the sign-in you already had on "
                             "another application.",
    Reason.HANDOFF_NO_SESSION: "You are not signed in on the application that was asked to "
                               "hand on your sign-in; you were sent to sign in.",
    Reason.HANDOFF_BAD_TARGET: "Sign-ins are handed on only to other applications of this "
                               "gateway.",
    Reason.HANDOFF_INVALID: "The sign-in hand-off link was not valid; you were sent to sign in.",
    Reason.HANDOFF_USED: "The sign-in hand-off link had already been used; you were sent to "
                         "sign in.",
    Reason.HANDOFF_EXPIRED: "The sign-in hand-off link had expired; you were sent to sign in.",
    Reason.HANDOFF_OTHER_CERTIFICATE: "The sign-in hand-off link was made for another "
                                      "certificate; you were sent to sign in.",
    Reason.HANDOFF_OTHER_HOST: "The sign-in hand-off link was made for another application; "
                               "you were sent to sign in.",
    Reason.HANDOFF_ORIGIN_ENDED: "The sign-in to hand on ended meanwhile; you were sent to "
                                 "sign in.",
    Reason.LOST_PAGE: "The page to stop a lost certificate was shown.",
    Reason.LOST_STOPPED: "The certificate was stopped with its stop code.",
    Reason.LOST_REFUSED: "The user name or the stop code is not right, or the code was "
                         "already used.",
    Reason.LOST_LIMITED: "Too many tries to stop a certificate from here; wait before "
                         "trying again.",
    Reason.DOWNLOAD_PAGE: "The page of a certificate download link was shown.",
    Reason.DOWNLOADED: "The certificate file of a download link was fetched (once).",
    Reason.DOWNLOAD_REFUSED: "This download link is not valid, was already used or has "
                             "expired.",
}


def describe(reason: Reason) -> str:
    """One sentence for a person about ``reason``."""
    return _DESCRIPTIONS[reason]


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    NEED_MFA = "need-mfa"


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer: what to do, why, for which app, by which rule."""

    effect: Effect
    reason: Reason
    app: str | None = None
    rule: str | None = None

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What the engine judges: who, what, from where, when (the caller's clock)."""

    host: str
    method: str
    path: str
    user: str
    groups: frozenset[str]
    source_ip: IPAddress
    now: datetime
    mfa_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Days of the week (Monday = 0) and a start/end time in a zone; end < start spans midnight."""

    days: frozenset[int]
    start: time
    end: time
    tz: ZoneInfo

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= t < self.end
        # Overnight window (22:00-06:00): the part after midnight belongs to the
        # window that started the day before.
        if t >= self.start:
            return local.weekday() in self.days
        if t < self.end:
            return (local.weekday() - 1) % 7 in self.days
        return False


@dataclass(frozen=True, slots=True)
class PathMatcher:
    """Prefixes (segment-boundary) and globs, precompiled into one regex."""

    patterns: tuple[str, ...]
    regex: re.Pattern[str] = field(compare=False)

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule; ``None`` means "no condition on this".

    ``mfa_required`` and ``mfa_max_age`` are what the second factor must be for a
    request this (allow) rule admits, resolved at load time from the rule's own
    settings and its app's, so the engine never looks further than the rule.
    """

    id: str
    everyone: bool
    users: frozenset[str] | None
    groups: frozenset[str] | None
    methods: frozenset[str] | None
    paths: PathMatcher | None
    networks: tuple[IPNetwork, ...] | None
    hours: TimeWindow | None
    mfa_required: bool = False
    mfa_max_age: timedelta | None = None


# RFC 9110 methods (without TRACE and CONNECT, which a gateway has no business
# forwarding), PATCH (RFC 5789), WebDAV (RFC 4918, 3744, 5323), CalDAV and DeltaV
# (Subversion). Anything else must be declared per app in ``extra_methods``.
KNOWN_METHODS = frozenset({
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
    "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "ACL", "SEARCH",
    "REPORT", "MKCALENDAR", "MKACTIVITY", "CHECKOUT", "CHECKIN", "UNCHECKOUT", "MERGE",
    "VERSION-CONTROL", "MKWORKSPACE", "UPDATE", "LABEL", "BASELINE-CONTROL",
})


@dataclass(frozen=True, slots=True)
class AppPolicy:
    """One app's rules; ``mfa_required``/``mfa_max_age`` are the app's own defaults.

    ``may_need_mfa`` is true when the app or any of its allow rules asks for the
    second factor: the request path reads the session cookie only then.
    """

    name: str
    host: str
    allow: tuple[Rule, ...]
    deny: tuple[Rule, ...]
    mfa_required: bool
    mfa_max_age: timedelta | None
    may_need_mfa: bool


@dataclass(frozen=True)
class PolicySet:
    """Every app's policy, keyed by lowercase host."""

    apps: Mapping[str, AppPolicy]

    def app_for_host(self, host: str) -> AppPolicy | None:
        return self.apps.get(host)
