"""`certgate user add --totp pending` and `certgate user totp-reset --pending`: the
authenticator left to the person, what the admin is told, and the refusals."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.store.records import TotpRecord
from gateway.store.store import Store
from tests.gateway.cli.conftest import Certgate


def totp_of(cg: Certgate, user: str) -> tuple[TotpRecord | None, int]:
    """The user's TOTP record and how many unused recovery codes they have."""

    async def read() -> tuple[TotpRecord | None, int]:
        store = await Store.open(f"sqlite+aiosqlite:///{cg.data_dir / 'certgate.db'}")
        try:
            return (await store.get_totp(user),
                    len(await store.unused_recovery_codes(user)))
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    path = tmp_path / "pw"
    path.write_text("a long enough password\n")
    return path


def test_add_with_totp_pending(cg: Certgate, pw: Path) -> None:
    out = cg.ok("user", "add", "bob", "--group", "staff", "--password-file", str(pw),
                "--totp", "pending").out
    assert out.startswith("added user bob in staff\n")
    assert "bob will set up the authenticator app on their phone themselves" in out
    assert "asks only for the password, then shows a QR code" in out
    assert "no password yet" not in out
    record, codes = totp_of(cg, "bob")
    assert record is not None and (record.state, record.last_step, codes) == ("pending", None, 0)
    assert record.secret_sealed.startswith("v")  # sealed, never the base32 secret
    assert (cg.data_dir / "secrets.key").stat().st_mode & 0o777 == 0o600


def test_add_pending_without_password_says_what_is_missing(cg: Certgate) -> None:
    out = cg.ok("user", "add", "carol", "--totp", "pending").out
    assert "carol has no password yet: set one with `certgate user passwd carol`" in out
    assert totp_of(cg, "carol")[0] is not None


def test_add_without_totp_leaves_none(cg: Certgate) -> None:
    cg.ok("user", "add", "dave")
    assert totp_of(cg, "dave") == (None, 0)


def test_totp_reset_pending_after_enroll(cg: Certgate, pw: Path) -> None:
    cg.ok("user", "add", "alice", "--password-file", str(pw))
    enrolled = cg.ok("user", "totp-enroll", "alice", "--json").json()
    before, codes = totp_of(cg, "alice")
    assert before is not None and (before.state, codes) == ("active", 10)
    out = cg.ok("user", "totp-reset", "alice", "--pending").out
    assert "authenticator of alice removed, recovery codes void, sessions ended." in out
    assert "alice will set up the authenticator app" in out
    after, codes = totp_of(cg, "alice")
    assert after is not None and (after.state, codes) == ("pending", 0)
    assert after.secret_sealed != before.secret_sealed
    assert enrolled["secret"] not in out  # the new secret is for the enrollment page only
    # Plain reset: nothing left; the message names the next command.
    out = cg.ok("user", "totp-reset", "alice").out
    assert "certgate user totp-enroll alice" in out
    assert totp_of(cg, "alice") == (None, 0)


def lock(cg: Certgate, subject: str, until: datetime) -> None:
    """Sign-in locked as the gateway's failure counter locks it."""

    async def write() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{cg.data_dir / 'certgate.db'}")
        try:
            await store.add_failure([subject], until - timedelta(minutes=15),
                                    lambda f: replace(f, count=5, locked_until=until))
        finally:
            await store.close()

    asyncio.run(write())


def test_user_show_tells_the_authenticator_state(cg: Certgate, pw: Path) -> None:
    cg.ok("user", "add", "bob", "--password-file", str(pw), "--totp", "pending")
    shown = cg.ok("user", "show", "bob", "--json").json()
    assert (shown["totp"], shown["recovery_codes_left"], shown["locked_until"]) == (
        "pending", 0, None)
    out = cg.ok("user", "show", "bob").out
    assert "totp:         pending (the person sets it up at their next sign-in)\n" in out
    assert "recovery:     0 codes left\nlocked:       no\n" in out

    cg.ok("user", "add", "alice", "--password-file", str(pw))
    assert cg.ok("user", "show", "alice", "--json").json()["totp"] == "none"
    cg.ok("user", "totp-enroll", "alice")
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=14)
    lock(cg, "user:alice", until)
    shown = cg.ok("user", "show", "alice", "--json").json()
    assert (shown["totp"], shown["recovery_codes_left"], shown["locked_until"]) == (
        "active", 10, until.isoformat())
    out = cg.ok("user", "show", "alice").out
    assert f"locked:       until {until:%Y-%m-%d %H:%M} UTC (certgate user unlock alice)" in out
    cg.ok("user", "unlock", "alice")
    assert cg.ok("user", "show", "alice", "--json").json()["locked_until"] is None
    # A lock that has run out is no lock.
    lock(cg, "user:alice", datetime.now(UTC) - timedelta(minutes=1))
    assert "locked:       no\n" in cg.ok("user", "show", "alice").out


@pytest.mark.parametrize(("args", "code", "message"), [
    (["user", "add", "erin", "--totp", "later"], 2, "Invalid value for '--totp'"),
    (["user", "totp-reset", "nobody", "--pending"], 1, "certgate: no user named 'nobody'"),
    (["user", "totp-reset", "bob", "--pending"], 1,
     "certgate: user 'bob' is disabled; enable them first"),
])
def test_refusals(cg: Certgate, args: list[str], code: int, message: str) -> None:
    cg.ok("user", "add", "bob")
    cg.ok("user", "disable", "bob")
    result = cg(*args)
    assert result.code == code and message in result.err
    if code == 1:
        assert result.err.count("\n") == 1
    assert totp_of(cg, "bob") == (None, 0)
    assert "erin" not in cg.ok("user", "list").out


def test_help_says_what_pending_means(cg: Certgate) -> None:
    add = cg.ok("user", "add", "--help").out
    assert "--totp [none|pending]" in add and "themselves at their first sign-in" in add
    reset = cg.ok("user", "totp-reset", "--help").out
    assert "--pending" in reset and "certgate user totp-reset alice --pending" in reset
