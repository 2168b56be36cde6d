"""Engines and migrations.

SQLite (WAL, foreign keys on) is the embedded default; PostgreSQL through asyncpg
is the multi-node engine. ``migrate`` applies the Alembic revisions shipped inside
the package, so no alembic.ini is needed at run time.

``migrate`` is synchronous (Alembic runs its own event loop) and must be called
before a loop starts, or through ``migrate_async`` from inside one.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from gateway.store.errors import DatabaseUnavailableError, StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# How long a SQLite writer waits for another's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10000


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _check_url(url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"'{safe_url(url)}' is not a database URL") from None
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise StoreError(
            f"unsupported database '{parsed.drivername}'; use sqlite+aiosqlite:///PATH or "
            "postgresql+asyncpg://USER@HOST/DB"
        )


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the gateway read while the CLI writes; busy_timeout makes writers
    # wait for each other instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> AsyncEngine:
    _check_url(url)
    if url.startswith("sqlite"):
        # NullPool: aiosqlite keeps a worker thread per open connection that polls
        # its queue; idle pooled connections cost a gateway ~7% of a core under load.
        # Opening a SQLite file per transaction is cheap by comparison.
        engine = create_async_engine(url, poolclass=NullPool)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def short_cause(exc: BaseException) -> str:
    """The first line of the innermost error, without SQL or parameters."""
    inner: BaseException = exc
    while getattr(inner, "orig", None) is not None:
        inner = inner.orig  # type: ignore[attr-defined]
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else type(inner).__name__
    return re.sub(r"\[SQL:.*", "", text).strip()


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    _check_url(url)
    if url.startswith("sqlite"):
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    try:
        command.upgrade(cfg, "head")
    except (OSError, ConnectionError) as exc:
        raise DatabaseUnavailableError(
            f"cannot reach the database at {safe_url(url)}: {short_cause(exc)}") from None
    except Exception as exc:
        if _is_connection_error(exc):
            raise DatabaseUnavailableError(
                f"cannot reach the database at {safe_url(url)}: {short_cause(exc)}") from None
        raise


async def migrate_async(url: str) -> None:
    await asyncio.to_thread(migrate, url)


# SQLSTATEs that mean "no database to talk to right now" rather than "this statement
# failed": connection exceptions (class 08), a server shutting down, starting up or
# restarting (57P01-57P03), no connection slot left (53300). asyncpg raises them as
# its own errors, which SQLAlchemy wraps as a bare DBAPIError.
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def _sqlstate_says_unavailable(exc: BaseException) -> bool:
    """True if an error in ``exc``'s chain carries one of ``_UNAVAILABLE_STATES``, or is
    PostgreSQL's 'database … is not currently accepting connections' (55000, from
    ``ALTER DATABASE … ALLOW_CONNECTIONS false``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        state = str(getattr(err, "sqlstate", None) or "")
        if state and (state.startswith(_UNAVAILABLE_STATES)
                      or (state == "55000" and "accepting connections" in str(err))):
            return True
        todo += [getattr(err, "orig", None), err.__cause__, err.__context__]
    return False


def _is_connection_error(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError | OSError | ConnectionError):
        return True
    return isinstance(exc, DBAPIError) and (bool(exc.connection_invalidated)
                                            or _sqlstate_says_unavailable(exc))


def serial_hex(serial: int) -> str:
    """The stored and printed form of a serial: uppercase hex, even length."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def serial_from_text(text: str) -> int:
    """Parse a serial as printed by certgate, openssl (with colons) or with 0x."""
    cleaned = text.strip().replace(":", "").replace(" ", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    if not cleaned or not re.fullmatch(r"[0-9A-Fa-f]{1,40}", cleaned):
        raise ValueError(f"'{text}' is not a certificate serial (hex digits, colons allowed)")
    return int(cleaned, 16)
