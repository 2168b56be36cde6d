"""`certgate policy explain` on the second factor: what the deciding rule needs, what the
user has (their newest live session, or `--last-totp` for what-if questions)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from gateway.config import load_config
from gateway.store.records import SessionRecord
from gateway.store.store import Store
from tests.gateway.cli.conftest import Certgate

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
APPS = [{"name": "pbx", "host": "pbx.example.test", "upstream": "http://127.0.0.1:9",
         "allow": [{"groups": ["staff"], "paths": ["/phonebook"]},
                   {"groups": ["pbx-admins"], "paths": ["/admin"], "mfa": "required",
                    "mfa_max_age": "15m"}]},
        {"name": "hr", "host": "hr.example.test", "upstream": "http://127.0.0.1:9",
         "mfa": "required", "allow": [{"groups": ["staff"]}]}]


@pytest.fixture
def pbx(cg: Certgate) -> Certgate:
    data = yaml.safe_load(cg.config.read_text())
    data["apps"] = APPS
    cg.config.write_text(yaml.safe_dump(data, sort_keys=False))
    cg.ok("user", "add", "carol", "--group", "staff", "--group", "pbx-admins")
    return cg


def explain(cg: Certgate, url: str, *args: str) -> str:
    return cg.ok("policy", "explain", "--user", "carol", "--url", url, "--at", AT.isoformat(),
                 *args).out


def mfa_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("mfa:"))


@pytest.mark.parametrize(("url", "last", "decision", "line"), [
    ("https://pbx.example.test/admin", "22m", "need-mfa",
     "mfa:      needs a TOTP newer than 15 min; last one 22 min ago"),
    ("https://pbx.example.test/admin", "14m", "allow",
     "mfa:      needs a TOTP newer than 15 min; last one 14 min ago"),
    ("https://pbx.example.test/admin", "never", "need-mfa",
     "mfa:      needs a sign-in with password and a TOTP code newer than 15 min; "
     "no session yet"),
    ("https://pbx.example.test/admin", "2h", "need-mfa",
     "mfa:      needs a TOTP newer than 15 min; last one 2 h ago"),
    ("https://pbx.example.test/phonebook", "never", "allow",
     "mfa:      not needed: the certificate alone is enough for this rule"),
    ("https://hr.example.test/", "NEVER", "need-mfa",
     "mfa:      needs a sign-in with password and a TOTP code; no session yet"),
    ("https://hr.example.test/", "1d", "allow",
     "mfa:      needs a sign-in with password and a TOTP code; signed in 1 d ago"),
])
def test_wording(pbx: Certgate, url: str, last: str, decision: str, line: str) -> None:
    out = explain(pbx, url, "--last-totp", last)
    assert f"decision: {decision}" in out
    assert mfa_line(out) == line


def test_denied_requests_say_nothing_of_the_second_factor(pbx: Certgate) -> None:
    out = pbx.ok("policy", "explain", "--user", "carol", "--url",
                 "https://pbx.example.test/other").out
    assert "decision: deny" in out and "mfa:" not in out


def test_json(pbx: Certgate) -> None:
    data = pbx.ok("policy", "explain", "--user", "carol", "--url",
                  "https://pbx.example.test/admin", "--at", AT.isoformat(), "--last-totp", "22m",
                  "--json").json()
    assert (data["decision"], data["reason"], data["rule"]) == ("need-mfa", "mfa-too-old",
                                                               "pbx.allow[1]")
    assert (data["mfa_required"], data["mfa_max_age_seconds"], data["last_totp_age_seconds"]) \
        == (True, 900, 1320)
    assert data["mfa"] == "needs a TOTP newer than 15 min; last one 22 min ago"
    data = pbx.ok("policy", "explain", "--user", "carol", "--url",
                  "https://pbx.example.test/phonebook", "--json").json()
    assert (data["mfa_required"], data["mfa_max_age_seconds"], data["last_totp_age_seconds"]) \
        == (False, None, None)


def _session(n: int, *, created: datetime, last_seen: datetime, mfa_at: datetime | None
             ) -> SessionRecord:
    return SessionRecord(f"{n:064x}", "carol", "f" * 64, created, last_seen, mfa_at,
                         ("mtls", "pwd", "otp"))


def test_default_reads_the_newest_live_session(pbx: Certgate) -> None:
    url = "https://pbx.example.test/admin"
    assert mfa_line(explain(pbx, url)).endswith("no session yet")

    async def add(*sessions: SessionRecord) -> None:
        store = await Store.open(load_config(pbx.config).database_url)
        try:
            for session in sessions:
                await store.create_session(session)
        finally:
            await store.close()

    minutes = timedelta(minutes=1)
    asyncio.run(add(
        # Live, TOTP 40 min ago; live, TOTP 22 min ago (the newest counts).
        _session(1, created=AT - 50 * minutes, last_seen=AT - minutes, mfa_at=AT - 40 * minutes),
        _session(2, created=AT - 30 * minutes, last_seen=AT - minutes, mfa_at=AT - 22 * minutes),
        # Idle too long (1 h), and past the absolute limit (12 h): neither counts.
        _session(3, created=AT - 70 * minutes, last_seen=AT - 61 * minutes,
                 mfa_at=AT - 2 * minutes),
        _session(4, created=AT - 13 * 60 * minutes, last_seen=AT - minutes,
                 mfa_at=AT - 3 * minutes),
        # Made after the time asked about.
        _session(5, created=AT + minutes, last_seen=AT + minutes, mfa_at=AT + minutes)))
    out = explain(pbx, url)
    assert "decision: need-mfa" in out
    assert mfa_line(out) == "mfa:      needs a TOTP newer than 15 min; last one 22 min ago"
    # --last-totp answers a what-if question, whatever the sessions say.
    assert mfa_line(explain(pbx, url, "--last-totp", "5m")).endswith("last one 5 min ago")


@pytest.mark.parametrize("value", ["soon", "-5m", "15 minutes", "", "5x"])
def test_bad_last_totp_is_a_usage_error(pbx: Certgate, value: str) -> None:
    result = pbx("policy", "explain", "--user", "carol", "--url",
                 "https://pbx.example.test/admin", "--last-totp", value)
    assert result.code == 2
    assert "--last-totp" in result.err and "is not a duration" in result.err
    assert "or 'never'" in result.err


def test_help_names_the_option(pbx: Certgate) -> None:
    out = pbx.ok("policy", "explain", "--help").out
    assert "--last-totp AGE|never" in out and "--last-totp 22m" in out
