"""Engines, migrations and serial formats."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.store.db import (
    _is_connection_error,
    make_engine,
    migrate_async,
    serial_from_text,
    serial_hex,
    sqlite_url,
)
from gateway.store.errors import DatabaseUnavailableError, StoreError
from gateway.store.store import Store


async def test_migrate_is_idempotent_and_sqlite_uses_wal(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "db" / "certgate.db")
    store = await Store.open(url)
    await store.add_user("alice")
    await store.close()
    store = await Store.open(url)  # migrating again keeps the data
    assert [u.name for u in await store.list_users()] == ["alice"]
    await store.close()
    engine = make_engine(url)
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        assert version == "0008"
    await engine.dispose()


async def test_postgres_migrates_too(database_url: str) -> None:
    store = await Store.open(database_url)
    await store.add_user("x")
    await store.close()
    await migrate_async(database_url)  # a second run is a no-op


async def test_unreachable_postgres_is_one_clear_sentence_without_password() -> None:
    url = "postgresql+asyncpg://certgate:s3cret-pw@127.0.0.1:1/certgate"
    with pytest.raises(DatabaseUnavailableError) as info:
        await Store.open(url)
    message = str(info.value)
    assert message.startswith("cannot reach the database at postgresql+asyncpg://certgate:***@")
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize("url", ["mysql://x@y/z", "not a url", "sqlite:///plain-driver.db"])
async def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match="unsupported database|not a database URL"):
        await Store.open(url)


@pytest.mark.parametrize(("value", "text_"), [(1, "01"), (0xABC, "0ABC"), (2**127 + 1,
                                                                          "8" + "0" * 30 + "1")])
def test_serial_hex(value: int, text_: str) -> None:
    assert serial_hex(value) == text_
    assert serial_from_text(text_) == value


@pytest.mark.parametrize(("text_", "value"), [("0a:bc", 0xABC), ("0xABC", 0xABC),
                                             (" 0A BC ", 0xABC)])
def test_serial_from_text_accepts_common_forms(text_: str, value: int) -> None:
    assert serial_from_text(text_) == value


@pytest.mark.parametrize("text_", ["", "xyz", "12-34", "1" * 41])
def test_serial_from_text_refuses(text_: str) -> None:
    with pytest.raises(ValueError, match="not a certificate serial"):
        serial_from_text(text_)


class _DriverError(Exception):
    """What asyncpg raises: an error carrying its SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("message", "sqlstate", "unavailable"), [
    ('database "gw" is not currently accepting connections', "55000", True),  # ALLOW_CONNECTIONS
    ("the database system is starting up", "57P03", True),
    ("terminating connection due to administrator command", "57P01", True),
    ("connection failure", "08006", True),
    ("sorry, too many clients already", "53300", True),
    ("currval of sequence is not yet defined in this session", "55000", False),
    ('relation "users" does not exist', "42P01", False),
    ("duplicate key value violates unique constraint", "23505", False),
])
def test_driver_errors_that_mean_the_database_is_away(message: str, sqlstate: str,
                                                      unavailable: bool) -> None:
    from sqlalchemy.exc import DBAPIError

    wrapped = DBAPIError("SELECT 1", {}, _DriverError(message, sqlstate))
    assert _is_connection_error(wrapped) is unavailable
