"""`certgate user …`: happy paths and every refusal, which changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.passwords import verify_password
from tests.gateway.cli.conftest import Certgate


def test_user_lifecycle(cg: Certgate, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("a long enough password\n")
    cg.ok("user", "add", "alice", "--email", "alice@example.test", "--group", "staff",
          "--group", "ops", "--password-file", str(pw))
    cg.ok("user", "add", "bob")
    listed = cg.ok("user", "list", "--json").json()
    assert [(u["name"], u["groups"], u["has_password"]) for u in listed] == [
        ("alice", ["ops", "staff"], True), ("bob", [], False)]
    assert "alice" in cg.ok("user", "list").out
    cg.ok("user", "disable", "bob")
    assert cg.ok("user", "show", "bob", "--json").json()["enabled"] is False
    cg.ok("user", "enable", "bob")
    cg.ok("user", "groups", "set", "bob", "staff")
    assert cg.ok("user", "show", "bob", "--json").json()["groups"] == ["staff"]
    pw.write_text("another long password\n")
    cg.ok("user", "passwd", "alice", "--password-file", str(pw))


def test_password_is_stored_as_argon2id(cg: Certgate, tmp_path: Path) -> None:
    import asyncio

    from gateway.store.store import Store

    pw = tmp_path / "pw"
    pw.write_text("a long enough password\n")
    cg.ok("user", "add", "alice", "--password-file", str(pw))

    async def stored() -> str | None:
        store = await Store.open(f"sqlite+aiosqlite:///{cg.data_dir / 'certgate.db'}")
        try:
            return (await store.get_user("alice")).password_hash
        finally:
            await store.close()

    password_hash = asyncio.run(stored())
    assert password_hash is not None and password_hash.startswith("$argon2id$")
    assert verify_password(password_hash, "a long enough password")
    assert not verify_password(password_hash, "wrong")


@pytest.mark.parametrize(("args", "code", "message"), [
    (["user", "add", "alice"], 1, "certgate: a user named 'alice' already exists"),
    (["user", "add", "Bad Name"], 1, "'Bad Name' is not a valid user name"),
    (["user", "add", "carol", "--email", "not-an-email"], 1, "is not an email address"),
    (["user", "add", "carol", "--group", "Bad Group"], 1, "is not a valid group name"),
    (["user", "show", "nobody"], 1, "certgate: no user named 'nobody'"),
    (["user", "disable", "nobody"], 1, "certgate: no user named 'nobody'"),
    (["user", "groups", "set", "nobody", "x"], 1, "certgate: no user named 'nobody'"),
    (["user", "email", "nobody", "n@example.test"], 1, "certgate: no user named 'nobody'"),
    (["user", "email", "alice", "not-an-email"], 1, "'not-an-email' is not an email address"),
    (["user", "email", "alice", "a" * 60 + "@" + "b" * 200 + ".test"], 1,
     "an email address has at most 254 characters"),
    (["user", "email", "alice"], 2, "give either an ADDRESS or --clear"),
    (["user", "email", "alice", "a@example.test", "--clear"], 2,
     "give either an ADDRESS or --clear"),
    (["user", "frobnicate"], 2, "No such command 'frobnicate'"),
    (["user", "add"], 2, "Missing argument 'NAME'"),
])
def test_refusals(cg: Certgate, args: list[str], code: int, message: str) -> None:
    cg.ok("user", "add", "alice")
    before = cg.ok("user", "list", "--json").out
    result = cg(*args)
    assert result.code == code
    assert message in result.err
    if code == 1:
        assert result.err.count("\n") == 1  # one sentence; usage errors add click's usage hint
    assert cg.ok("user", "list", "--json").out == before


def test_short_password_refused(cg: Certgate, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("short\n")
    result = cg("user", "add", "dave", "--password-file", str(pw))
    assert (result.code, result.err.strip()) == (
        1, "certgate: the password must have at least 12 characters")


def test_missing_config_is_a_clear_error(cg: Certgate, tmp_path: Path) -> None:
    cg.config = tmp_path / "missing.yaml"
    result = cg("user", "list")
    assert result.code == 1
    assert result.err.startswith(f"certgate: no config file at {tmp_path / 'missing.yaml'}")


def test_broken_config_names_file_and_line(cg: Certgate) -> None:
    text = cg.config.read_text().replace("workers: 1", "workers: 1\nwrkers: 2")
    cg.config.write_text(text)
    result = cg("user", "list")
    line = text.splitlines().index("wrkers: 2") + 1
    assert result.code == 1
    assert f"{cg.config}:{line}: wrkers: unknown key 'wrkers'" in result.err


def test_password_reset_prints_the_code_once_and_records_it(cg: Certgate,
                                                            tmp_path: Path) -> None:
    import getpass
    import json

    from gateway.auth.resetcodes import code_matches, well_formed
    from tests.gateway.cli.test_admin_trail import cli_rows, in_store, set_node

    set_node(cg, "gw1")
    pw = tmp_path / "pw"
    pw.write_text("a long enough password\n")
    cg.ok("user", "add", "alice", "--password-file", str(pw))
    assert "reset open" not in cg.ok("user", "show", "alice").out
    out = cg.ok("user", "password-reset", "alice").out
    code = out.split("Set-up code for alice: ", 1)[1].split()[0]
    assert well_formed(code) and "by phone" in out and "works once, until" in out
    shown = cg.ok("user", "show", "alice", "--json").json()
    assert shown["has_password"] is False and shown["password_reset_until"]
    assert "reset open:" in cg.ok("user", "show", "alice").out
    again = cg.ok("user", "password-reset", "alice", "--json").json()
    assert well_formed(again["code"]) and again["code"] != code

    from datetime import datetime, timedelta
    from typing import Any

    before_expiry = datetime.fromisoformat(again["expires_at"]) - timedelta(hours=1)

    async def stored(store: Any) -> Any:
        return await store.open_password_reset("alice", before_expiry)

    found = in_store(cg, stored)
    assert found is not None and code_matches(found.code_hash, again["code"])
    assert not code_matches(found.code_hash, code)
    rows = [r for r in cli_rows(cg) if r["type"] == "password.reset"]
    assert [(r["reason"], r["user"], r["actor"]) for r in rows] == [
        ("set", "alice", getpass.getuser())] * 2
    assert code not in json.dumps(rows) and again["code"] not in json.dumps(rows)
    failed = cg("user", "password-reset", "nobody")
    assert failed.code == 1 and "no user named 'nobody'" in failed.err


def test_email_set_change_clear_and_recorded(cg: Certgate) -> None:
    import getpass
    import json

    from tests.gateway.cli.test_admin_trail import cli_rows, set_node

    set_node(cg, "gw1")
    cg.ok("user", "add", "alice", "--email", "alice@example.test")
    cg.ok("user", "add", "bob")
    out = cg.ok("user", "email", "alice", "alice.smith@example.test").out
    assert out.strip() == "e-mail of alice is alice.smith@example.test (was alice@example.test)"
    assert cg.ok("user", "show", "alice", "--json").json()["email"] == "alice.smith@example.test"
    assert cg.ok("user", "email", "bob", "bob@example.test").out.strip() == (
        "e-mail of bob is bob@example.test")
    out = cg.ok("user", "email", "alice", "--clear").out
    assert out.strip() == "alice has no e-mail address now (was alice.smith@example.test)"
    listed = {u["name"]: u["email"] for u in cg.ok("user", "list", "--json").json()}
    assert listed == {"alice": None, "bob": "bob@example.test"}
    rows = [r for r in cli_rows(cg) if r["type"] == "user.email"]
    assert [(r["reason"], r["user"], r["actor"], json.loads(r["detail"])) for r in rows] == [
        ("email set", "alice", getpass.getuser(),
         {"before": "alice@example.test", "after": "alice.smith@example.test"}),
        ("email set", "bob", getpass.getuser(), {"before": None, "after": "bob@example.test"}),
        ("email cleared", "alice", getpass.getuser(),
         {"before": "alice.smith@example.test", "after": None})]
