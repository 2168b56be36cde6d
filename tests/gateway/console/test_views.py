"""What "My access" shows, from plain records: states, the renew notice, the sessions
(a table of cases; the recent records in sentences: test_recent.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.console import views
from gateway.store.records import CertRecord, CertStatus, SessionRecord

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def cert(serial: int, status: CertStatus = CertStatus.ACTIVE, *, reason: str | None = None,
         not_after: datetime = NOW + 300 * DAY, fingerprint: str = "f1") -> CertRecord:
    return CertRecord(serial=serial, user="alice", fingerprint=fingerprint, subject="CN=alice",
                      not_before=NOW - DAY, not_after=not_after, status=status,
                      issued_at=NOW - DAY, pem="", reason=reason)


@pytest.mark.parametrize(("record", "state", "can_suspend"), [
    (cert(1), "Active", True),
    (cert(2, CertStatus.SUSPENDED, reason="certificateHold"), "Suspended", False),
    (cert(3, CertStatus.REVOKED, reason="keyCompromise"), "Revoked", False),
    (cert(4, CertStatus.REVOKED, reason="superseded"), "Replaced", False),
    (cert(5, not_after=NOW), "Expired", False),
])
def test_certificate_states(record: CertRecord, state: str, can_suspend: bool) -> None:
    (row,) = views.cert_rows((record,), "other", NOW)
    assert (row.state, row.can_suspend, row.in_use) == (state, can_suspend, False)


def test_the_certificate_in_use_and_its_serial_ending() -> None:
    rows = views.cert_rows((cert(0x1234567890AB, fingerprint="here"), cert(7)), "here", NOW)
    assert [(r.ending, r.in_use) for r in rows] == [("567890AB", True), ("07", False)]


@pytest.mark.parametrize(("left", "expected"), [
    (31 * DAY, None),
    (30 * DAY, ("25 Dec 2026", 30)),
    (DAY + timedelta(hours=3), ("26 Nov 2026", 1)),
    (timedelta(hours=3), ("25 Nov 2026", 0)),
    (-DAY, ("24 Nov 2026", 0)),
])
def test_renew_notice_from_thirty_days(left: timedelta, expected: tuple[str, int] | None
                                       ) -> None:
    notice = views.renew_notice(NOW + left, NOW)
    assert (None if notice is None else tuple(notice)) == expected


def test_sessions_mark_the_current_one() -> None:
    s = [SessionRecord("a" * 64, "alice", "f", NOW - DAY, NOW - DAY, None, ("mtls",)),
         SessionRecord("b" * 64, "alice", "f", NOW, NOW, NOW, ("mtls",), host="wiki.test")]
    rows = views.session_rows(tuple(s), "b" * 64, NOW)
    assert [(r.host, r.current, r.last_used) for r in rows] == [
        ("(unknown application)", False, "24 Nov 2026, 12:00 UTC"), ("wiki.test", True, "now")]
