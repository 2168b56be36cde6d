"""`certgate db upgrade` and `certgate db move-to`: a populated SQLite install moves
to PostgreSQL (or another SQLite file) whole, verified, and the config follows."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from gateway.store.db import sqlite_url
from tests.conftest import PG_ENV, _create_pg_database, _drop_pg_database
from tests.gateway.cli.conftest import Certgate


def crl_number(path: Path) -> int:
    crl = x509.load_der_x509_crl(path.read_bytes())
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def populate(cg: Certgate, tmp_path: Path) -> dict[str, str]:
    cg.ok("user", "add", "alice", "--email", "alice@example.test", "--group", "staff")
    cg.ok("user", "add", "bob", "--group", "sales")
    kept = cg.ok("cert", "issue", "alice", "--out", str(tmp_path / "a.p12"), "--json").json()
    gone = cg.ok("cert", "issue", "bob", "--out", str(tmp_path / "b.p12"), "--json").json()
    cg.ok("cert", "revoke", gone["serial"], "--reason", "keyCompromise")
    cg.ok("crl", "--out", str(tmp_path / "before.crl"))
    return {"kept": kept["serial"], "revoked": gone["serial"]}


def statuses(cg: Certgate) -> dict[str, str]:
    return {c["serial"]: c["status"] for c in cg.ok("cert", "list", "--json").json()}


def check_moved(cg: Certgate, tmp_path: Path, target: str, serials: dict[str, str]) -> None:
    before = statuses(cg)
    users = cg.ok("user", "list", "--json").json()
    result = cg.ok("db", "move-to", target, "--json").json()
    assert result["verified"] is True
    assert result["tables"]["users"] == 2 and result["tables"]["certificates"] == 2
    assert f"database_url: {target}" in cg.config.read_text()
    # The same install, now read from the new database.
    assert statuses(cg) == before
    assert before[serials["revoked"]] == "revoked"
    assert cg.ok("user", "list", "--json").json() == users
    cg.ok("crl", "--out", str(tmp_path / "after.crl"))
    assert crl_number(tmp_path / "after.crl") > crl_number(tmp_path / "before.crl")
    cg.ok("user", "add", "carol", "--group", "staff")  # new ids continue after the copied
    assert "schema revision" in cg.ok("db", "upgrade").out


def test_move_to_another_sqlite_file(cg: Certgate, tmp_path: Path) -> None:
    serials = populate(cg, tmp_path)
    check_moved(cg, tmp_path, sqlite_url(tmp_path / "moved" / "certgate.db"), serials)


def test_move_to_postgresql(cg: Certgate, tmp_path: Path) -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, name = asyncio.run(_create_pg_database(base))
    try:
        serials = populate(cg, tmp_path)
        check_moved(cg, tmp_path, url, serials)
    finally:
        asyncio.run(_drop_pg_database(base, name))


def test_a_target_with_data_or_the_same_database_is_refused(cg: Certgate,
                                                              tmp_path: Path) -> None:
    populate(cg, tmp_path)
    original = cg.config.read_text()
    target = sqlite_url(tmp_path / "other.db")
    cg.ok("db", "move-to", target)
    cg.config.write_text(original)  # back to the first database

    again = cg("db", "move-to", target)
    assert again.code == 1 and "already holds data" in again.err
    assert cg.config.read_text() == original

    current = yaml.safe_load(original).get("database_url") or sqlite_url(
        cg.data_dir / "certgate.db")
    same = cg("db", "move-to", current)
    assert same.code == 1 and "already in use" in same.err

    bad = cg("db", "move-to", "just-a-name")
    assert bad.code == 1 and "is not a database URL" in bad.err
    assert cg.config.read_text() == original
