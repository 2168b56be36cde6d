""""My recent access" in plain sentences: each audit record about a person as one line
they can read ("Your certificate …4F2C81A2 was issued by the administrator", "You
signed in", "Refused: your sign-in was locked after too many wrong codes", "Allowed:
intranet GET /reports").

Every record type that can name a person has its sentence here (requests and sign-ins,
``gateway.runtime.RECORD_TYPES``; the admin's changes, ``gateway.manage.trail`` and the
CLI and console that call it; the person's own changes on "My access"; ``lockout``,
``cert.lost``, ``change.applied``); a type added later reads "Recorded: <type>" until
it gets one. Certificates are named by the last 8 hex digits of their serial, as the
"My certificates" list names them.

Pure: no I/O, no clock. Values stay text for the template to escape; nothing here
builds HTML.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.console.views import when
from gateway.http.admit import host_from_header
from gateway.manage.me import AccessLine
from policies.model import Reason, describe

ADMIN = "the administrator"
_VERDICT = {"allow": "Allowed", "deny": "Refused", "error": "Failed"}

# What happened to the person's account, certificates or sign-in; {cert} is a
# certificate ("…4F2C81A2"), {by} who did it ("the administrator" or "you").
_CHANGES = {
    "cert.issue": "Your certificate {cert} was issued by {by}",
    "cert.renew": "Your certificate was renewed by {by}: the new one is {cert}",
    "cert.revoke": "Your certificate {cert} was revoked by {by}",
    "cert.suspend": "Your certificate {cert} was suspended by {by}",
    "cert.resume": "Your certificate {cert} was resumed by {by}: it works again",
    "cert.lost": "Your certificate {cert} was stopped with its stop code",
    "cert.download_link": "A download link for your certificate {cert} was made by {by}",
    "download.mailed": "The download link for your certificate {cert} was e-mailed to you "
                       "by {by}",
    "password.reset": "A password reset was set for you by {by}: your old password stopped "
                      "working; choose a new one with the set-up code you were given",
    "user.add": "Your account was created by {by}",
    "user.enable": "Your account was enabled by {by}",
    "user.disable": "Your account was disabled by {by}: your certificates stopped working",
    "user.password": "Your password was set by {by}",
    "user.groups": "Your groups were changed by {by}",
    "user.email": "Your e-mail address was changed by {by}",
    "totp.pending": "You were asked to set up your authenticator app at your next sign-in",
    "totp.enroll": "Your authenticator app was set up by {by}",
    "totp.reset": "Your authenticator app was reset by {by}",
    "recovery.replace": "You were given new recovery codes by {by}; the old ones stopped "
                        "working",
    "unlock": "Your sign-in was unlocked by {by}",
    "session.kill": "Your sessions were ended by {by}",
    "session.end": "Your sessions were ended by {by}",
    "change.applied": "A gateway applied a change to your access",
    "lockout": "Your sign-in was locked after too many wrong passwords or codes",
}
# Where the reason changes what happened: (type, reason) before the type alone.
_CHANGES_BY_REASON = {
    ("download.mailed", "failed"): "An e-mail with the download link for your certificate "
                                   "{cert} could not be sent",
    ("download.mailed", "sending"): "The download link for your certificate {cert} was "
                                    "being e-mailed to you by {by}",
}
# The gateway's own pages, by what a person calls them.
_PAGES = {"/.certgate/me": "My access", "/.certgate/login": "the sign-in page",
          "/.certgate/enroll": "the page to set up your authenticator app",
          "/.certgate/reset": "the page to choose a new password",
          "/.certgate/whoami": "the page that shows who you are",
          "/.certgate/help": "the help page"}
# Sign-ins and the like: what the person did, by the reason it was recorded with.
_SIGN_IN = {
    Reason.LOGIN_SUCCEEDED: "You signed in",
    Reason.LOCKED_OUT: "Refused: your sign-in was locked after too many wrong passwords "
                       "or codes",
    Reason.LOGIN_FAILED: "Refused: a sign-in with a wrong password or code",
    Reason.LOGGED_OUT: "You signed out",
    Reason.ENROLL_FAILED: "Refused: the code to set up your authenticator app was not right",
    Reason.ENROLLED: "You set up your authenticator app",
    Reason.RESET_COMPLETED: "You chose a new password with your set-up code",
    Reason.RESET_FAILED: "Refused: a new password with a wrong set-up code or "
                         "authenticator code",
    Reason.HANDOFF_ACCEPTED: "Your sign-in was carried over to {host}",
}

# A request answered with the way to the sign-in page (it comes back after).
_TO_SIGN_IN = frozenset({Reason.MFA_REQUIRED, Reason.MFA_TOO_OLD, Reason.HANDOFF_SENT})


class AccessRow(NamedTuple):
    at: str
    sentence: str
    decision: str  # "allow", "deny", "error" or "info": how the line is marked


def reason_words(reason: str | None) -> str:
    """A stored reason in plain words (the page's vocabulary when it knows it)."""
    if not reason:
        return ""
    try:
        return describe(Reason(reason))
    except ValueError:
        return reason.replace("-", " ").capitalize() + "."


def sentence(line: AccessLine, person: str) -> str:
    """The record as one sentence (no full stop: the page adds none either)."""
    if line.path is not None:
        return _request(line)
    verdict = _VERDICT.get(line.decision or "") if line.decision != "allow" else None
    template = _CHANGES_BY_REASON.get((line.type, line.reason or "")) or _CHANGES.get(line.type)
    if template is None:
        words = reason_words(line.reason).rstrip(".")
        text = f"Recorded: {line.type}" + (f" ({words[0].lower()}{words[1:]})" if words else "")
    else:
        by = "you" if line.actor is not None and line.actor == person else ADMIN
        cert = f"…{line.serial[-8:]}" if line.serial else ""
        text = template.format(by=by, cert=cert).replace("  ", " ").replace(" :", ":")
    if verdict is None or text.startswith(verdict):
        return text
    return f"{verdict}: {text[0].lower()}{text[1:]}"


def _request(line: AccessLine) -> str:
    host = host_from_header(line.host or "")
    try:
        reason: Reason | None = Reason(line.reason or "")
    except ValueError:
        reason = None
    if reason in _SIGN_IN and line.decision in ("allow", "deny"):
        return _SIGN_IN[reason].format(host=host or "another application")
    path = line.path or ""
    page = _PAGES.get(path.split("?", 1)[0]) if line.app is None else None
    if page is not None and line.decision == "allow":
        return f"You opened {page}"
    verdict = _VERDICT.get(line.decision or "", "Recorded")
    if reason in _TO_SIGN_IN:  # not refused: on the way to the sign-in page
        verdict = "Sent to sign in first"
    where = line.app or host or "the gateway"
    text = f"{verdict}: {where} {line.method + ' ' if line.method else ''}{path}"
    if reason in _TO_SIGN_IN:
        return text
    if line.decision != "allow":
        words = reason_words(line.reason).rstrip(".")
        if words:
            text += f" ({words[0].lower()}{words[1:]})"
    return text


def access_rows(lines: tuple[AccessLine, ...], person: str) -> list[AccessRow]:
    """The person's records, newest first as given, each as a sentence."""
    return [AccessRow(when(line.at), sentence(line, person), _mark(line)) for line in lines]


def _mark(line: AccessLine) -> str:
    """How the line is marked: a refusal stands out; the way to sign in is no refusal."""
    if line.path is not None and line.reason in _TO_SIGN_IN:
        return "info"
    return line.decision or "info"
