"""`certgate user add --totp pending` and `certgate user totp-reset --pending`: the
authenticator left to the person, what the admin is told, and the refusals."""

from __future__ import annotations

import asyncio
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
