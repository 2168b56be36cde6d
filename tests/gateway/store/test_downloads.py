"""One-time download links in the store: only the token's hash, one download even when
two requests race, the file cleared once fetched or expired, a late visitor told
which (SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from gateway.store import tables as t
from gateway.store.downloads import DownloadLink
from gateway.store.records import CertRecord, CertStatus
from gateway.store.store import Store

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


async def _link(store: Store, token_hash: str = "h" * 64, *, p12: bytes = b"PKCS12") -> None:
    await store.add_user("erin")
    await store.add_certificate(CertRecord(
        serial=0x1234, user="erin", fingerprint="f" * 64, subject="CN=erin",
        not_before=NOW, not_after=NOW + 365 * DAY, status=CertStatus.ACTIVE, issued_at=NOW,
        pem="-----BEGIN CERTIFICATE-----"))
    await store.create_download(token_hash, serial=0x1234, holder="erin", p12=p12,
                                created_by="alice", expires_at=NOW + DAY, now=NOW)


async def _stored_p12(store: Store) -> list[bytes | None]:
    async with store._tx() as conn:
        return [row.p12 for row in await conn.execute(select(t.download_links.c.p12))]


async def test_a_link_gives_its_file_once(store: Store) -> None:
    await _link(store)
    assert await store.get_download("h" * 64) == DownloadLink("erin", "1234", NOW + DAY, None)
    assert await store.take_download("h" * 64, now=NOW + timedelta(hours=1)) == b"PKCS12"
    assert await store.take_download("h" * 64, now=NOW + timedelta(hours=2)) is None
    assert await store.get_download("h" * 64) == DownloadLink(
        "erin", "1234", NOW + DAY, NOW + timedelta(hours=1))
    assert await _stored_p12(store) == [None]  # the file is gone with the download
    assert await store.get_download("x" * 64) is None


async def test_two_racing_downloads_get_one_file(store: Store) -> None:
    await _link(store)
    got = await asyncio.gather(*(store.take_download("h" * 64, now=NOW) for _ in range(6)))
    assert sorted(got, key=lambda g: g is None) == [b"PKCS12"] + [None] * 5


async def test_an_expired_link_gives_nothing_and_its_file_is_swept(store: Store) -> None:
    await _link(store)
    assert await store.take_download("h" * 64, now=NOW + DAY) is None
    # The next link made clears expired files, and keeps the row for a clear refusal.
    await store.create_download("k" * 64, serial=0x1234, holder="erin", p12=b"NEW",
                                created_by="alice", expires_at=NOW + 3 * DAY, now=NOW + 2 * DAY)
    assert sorted(await _stored_p12(store), key=lambda p: p is None) == [b"NEW", None]
    assert (await store.get_download("h" * 64)) is not None
    # A week later its row is gone too.
    await store.create_download("m" * 64, serial=0x1234, holder="erin", p12=b"N2",
                                created_by="alice", expires_at=NOW + 10 * DAY, now=NOW + 9 * DAY)
    assert await store.get_download("h" * 64) is None
