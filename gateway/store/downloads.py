"""One-time download links for a new person's .p12 (the console's hand-over).

A link's token is stored only as its SHA-256; fetching is a conditional write
(unused, unexpired), so a link works once across every node sharing the database,
and the .p12 is cleared in the same transaction. Expired links keep their row (so a
late visitor is told "expired", not "unknown") for a week, without the .p12.

Must not see a token in the clear, and must not decide lifetimes: the caller passes
``expires_at`` and ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update

from gateway.store import tables as t
from gateway.store.base import StoreBase
from gateway.store.db import serial_hex

_KEEP = timedelta(days=7)  # rows of spent or expired links, for a clear refusal


@dataclass(frozen=True, slots=True)
class DownloadLink:
    """What a link's page may say about it (never the .p12)."""

    holder: str
    serial: str
    expires_at: datetime
    used_at: datetime | None


class DownloadStore(StoreBase):
    """The ``Store`` methods about download links."""

    async def create_download(self, token_hash: str, *, serial: int, holder: str, p12: bytes,
                              created_by: str, expires_at: datetime, now: datetime) -> None:
        d = t.download_links.c
        async with self._tx() as conn:
            await conn.execute(delete(t.download_links).where(d.expires_at < now - _KEEP))
            await conn.execute(update(t.download_links).where(d.expires_at <= now)
                               .values(p12=None))
            await conn.execute(insert(t.download_links).values(
                token_hash=token_hash, serial=serial_hex(serial), holder=holder, p12=p12,
                created_by=created_by, created_at=now, expires_at=expires_at, used_at=None))

    async def get_download(self, token_hash: str) -> DownloadLink | None:
        d = t.download_links.c
        async with self._tx() as conn:
            row = (await conn.execute(select(d.holder, d.serial, d.expires_at, d.used_at)
                                      .where(d.token_hash == token_hash))).first()
        return None if row is None else DownloadLink(row.holder, row.serial, row.expires_at,
                                                     row.used_at)

    async def take_download(self, token_hash: str, *, now: datetime) -> bytes | None:
        """The .p12, once: marks the link used and clears the file in one transaction;
        None when the link is unknown, used or expired."""
        d = t.download_links.c
        async with self._tx() as conn:
            p12 = (await conn.execute(select(d.p12).where(
                d.token_hash == token_hash, d.used_at.is_(None), d.expires_at > now,
                d.p12.is_not(None)))).scalar_one_or_none()
            if p12 is None:
                return None
            spent = await conn.execute(update(t.download_links).where(
                d.token_hash == token_hash, d.used_at.is_(None)).values(used_at=now, p12=None))
            if spent.rowcount != 1:  # another node took it between the two statements
                return None
        return bytes(p12)
