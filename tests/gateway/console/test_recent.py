""""My recent access" in sentences a person reads: every record type that can name a
person (a table of cases), who did it (the person or the administrator), and a type
the page does not know yet."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.console import recent
from gateway.console.recent import access_rows, sentence
from gateway.manage.me import AccessLine

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SERIAL = "5C0FFEE04F2C81A2"


def request(type_: str, decision: str, reason: str, *, app: str | None = None,
            host: str = "wiki.test:8443", path: str = "/x", method: str = "GET"
            ) -> AccessLine:
    return AccessLine(NOW, type_, app, host, path, 200, decision, reason, method=method)


def change(type_: str, reason: str, *, actor: str | None = "root",
           decision: str | None = "info",
           serial: str | None = None) -> AccessLine:
    return AccessLine(NOW, type_, None, None, None, None, decision, reason, serial=serial,
                      actor=actor)


CASES = [
    # Requests to an application, and the gateway's own pages.
    (request("access", "allow", "allowed", app="intranet", path="/reports?[redacted]"),
     "Allowed: intranet GET /reports?[redacted]"),
    (request("access", "deny", "certificate-suspended", app="pbx", path="/"),
     "Refused: pbx GET / (your certificate is suspended)"),
    (request("access", "error", "upstream-timeout", app="wiki"), "Failed: wiki GET /x ("),
    (request("access", "deny", "unknown-host", host="nowhere.test"),
     "Refused: nowhere.test GET /x ("),
    (request("access", "allow", "builtin", path="/.certgate/me"), "You opened My access"),
    (request("access", "deny", "mfa-required", app="pbx", path="/calls"),
     "Sent to sign in first: pbx GET /calls"),
    (request("access", "deny", "mfa-too-old", host="secure.test", path="/.certgate/me"),
     "Sent to sign in first: secure.test GET /.certgate/me"),
    # Sign-ins and the authenticator.
    (request("login", "allow", "login-succeeded", method="POST", path="/.certgate/login"),
     "You signed in"),
    (request("login", "deny", "login-failed", method="POST", path="/.certgate/login"),
     "Refused: a sign-in with a wrong password or code"),
    (request("login", "deny", "locked-out", method="POST", path="/.certgate/login"),
     "Refused: your sign-in was locked after too many wrong passwords or codes"),
    (request("session.end", "allow", "logged-out", path="/.certgate/logout"),
     "You signed out"),
    (request("session.start", "allow", "handoff-accepted", host="pbx.test:8443",
             path="/.certgate/handoff"), "Your sign-in was carried over to pbx.test"),
    (request("enrollment", "allow", "enrolled", method="POST", path="/.certgate/enroll"),
     "You set up your authenticator app"),
    (request("password.reset", "allow", "reset-completed", method="POST",
             path="/.certgate/reset"), "You chose a new password with your set-up code"),
    (request("password.reset", "deny", "reset-failed", method="POST", path="/.certgate/reset"),
     "Refused: a new password with a wrong set-up code or authenticator code"),
    (change("password.reset", "set", actor="console:root"),
     "A password reset was set for you by the administrator: your old password stopped"),
    (change("download.mailed", "sent", actor="console:root", serial=SERIAL),
     "The download link for your certificate …4F2C81A2 was e-mailed to you by the "
     "administrator"),
    (change("download.mailed", "failed", actor="console:root", serial=SERIAL),
     "An e-mail with the download link for your certificate …4F2C81A2 could not be sent"),
    (request("enrollment", "deny", "enroll-failed", method="POST", path="/.certgate/enroll"),
     "Refused: the code to set up your authenticator app was not right"),
    (change("lockout", "locked", actor=None, decision="deny", serial=SERIAL),
     "Refused: your sign-in was locked after too many wrong passwords or codes"),
    # The administrator's changes, and the person's own on "My access".
    (change("cert.issue", "issued", serial=SERIAL),
     "Your certificate …4F2C81A2 was issued by the administrator"),
    (change("cert.renew", "renewed", serial=SERIAL),
     "Your certificate was renewed by the administrator: the new one is …4F2C81A2"),
    (change("cert.revoke", "keyCompromise", serial=SERIAL),
     "Your certificate …4F2C81A2 was revoked by the administrator"),
    (change("cert.suspend", "suspended", serial=SERIAL),
     "Your certificate …4F2C81A2 was suspended by the administrator"),
    (change("cert.suspend", "suspended-by-holder", actor="alice", serial=SERIAL),
     "Your certificate …4F2C81A2 was suspended by you"),
    (change("cert.resume", "resumed", serial=SERIAL),
     "Your certificate …4F2C81A2 was resumed by the administrator: it works again"),
    (change("cert.lost", "stop-code", actor=None, serial=SERIAL),
     "Your certificate …4F2C81A2 was stopped with its stop code"),
    (change("cert.download_link", "created", actor="carol", serial=SERIAL),
     "A download link for your certificate …4F2C81A2 was made by the administrator"),
    (change("cert.issue", "issued"), "Your certificate was issued by the administrator"),
    (change("user.add", "added"), "Your account was created by the administrator"),
    (change("user.enable", "enabled"), "Your account was enabled by the administrator"),
    (change("user.disable", "disabled"),
     "Your account was disabled by the administrator: your certificates stopped working"),
    (change("user.password", "password set"), "Your password was set by the administrator"),
    (change("user.groups", "groups set"), "Your groups were changed by the administrator"),
    (change("totp.pending", "pending"),
     "You were asked to set up your authenticator app at your next sign-in"),
    (change("totp.enroll", "enrolled"), "Your authenticator app was set up by the administrator"),
    (change("totp.reset", "reset"), "Your authenticator app was reset by the administrator"),
    (change("recovery.replace", "replaced"),
     "You were given new recovery codes by the administrator; the old ones stopped working"),
    (change("unlock", "unlocked"), "Your sign-in was unlocked by the administrator"),
    (change("session.kill", "ended"), "Your sessions were ended by the administrator"),
    (change("session.end", "ended-by-holder", actor="alice"), "Your sessions were ended by you"),
    (change("change.applied", "revoked", actor=None),
     "A gateway applied a change to your access"),
    # A type this page does not know yet: still a line a person can quote.
    (change("user.rename", "renamed"), "Recorded: user.rename (renamed)"),
    (change("some.thing", "", decision="deny"), "Refused: recorded: some.thing"),
]


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[0].type + ":" + (c[0].reason or "")
                                                            for c in CASES])
def test_every_record_is_a_sentence(line: AccessLine, expected: str) -> None:
    said = sentence(line, "alice")
    assert said.startswith(expected), said
    # Never the raw words of the trail ("Noted: Issued.").
    assert not said.startswith("Noted") and not said.endswith(".")


def test_every_change_type_of_the_trail_has_its_own_sentence() -> None:
    """The types the CLI, the console and the gateway record about a person (grep for
    them in gateway/), each with a sentence rather than the fallback."""
    import gateway

    source = "\n".join(p.read_text() for p in Path(gateway.__file__).parent.rglob("*.py"))
    recorded = set(re.findall(r'(?:record|certificates|event)\(\s*"([a-z_]+\.[a-z_]+)"', source))
    recorded |= set(re.findall(r'_recorded\(\s*visit, "([a-z_.]+)"', source))
    # Built with an f-string or an AuditRecord of their own:
    recorded |= {"cert.suspend", "cert.resume", "lockout", "unlock"}
    about_nobody = {"crl.sign", "audit.read", "gateway.start", "gateway.stop", "policy.reload",
                    "server_cert.renew", "audit.retention", "audit.unencodable"}
    assert recorded - about_nobody - recent._CHANGES.keys() == set()


def test_rows_carry_the_time_and_how_to_mark_them() -> None:
    rows = access_rows((change("lockout", "locked", actor=None, decision="deny"),
                        change("user.add", "added", decision=None),
                        request("access", "deny", "mfa-required", app="pbx"),
                        request("access", "deny", "path-denied", app="pbx")), "alice")
    assert [(r.at, r.decision) for r in rows] == [
        ("25 Nov 2026, 12:00 UTC", "deny"), ("25 Nov 2026, 12:00 UTC", "info"),
        ("25 Nov 2026, 12:00 UTC", "info"), ("25 Nov 2026, 12:00 UTC", "deny")]
