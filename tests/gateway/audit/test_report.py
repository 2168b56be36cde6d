"""The access-review page: the banner says what the verification found, everything a
client could have chosen is escaped, nothing is fetched from anywhere, and headless
Chromium renders it (the screenshot is kept in the test's tmp dir)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.charts import reason_chart, time_chart
from gateway.audit.report import AppLine, ReportData, Verdict, render_report
from gateway.audit.verify import Break, NodeResult
from gateway.store.audit_report import (
    Address,
    AdminRow,
    CertRow,
    DayCount,
    NodeSpan,
    ReasonCount,
    SignIns,
    Usage,
)
from policies.reach import Reach

CHROMIUM = Path("/usr/bin/chromium")
SINCE = datetime(2026, 10, 26, tzinfo=UTC)
UNTIL = datetime(2026, 11, 25, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script>'


def data(**changes: Any) -> ReportData:
    node = NodeResult("gw1", records=120, first_seq=1, last_seq=120, head="ab" * 32,
                      checkpoints=2)
    at = SINCE + timedelta(days=3)
    base = ReportData(
        since=SINCE, until=UNTIL, generated_at=UNTIL, generated_by="reviewer on gw1",
        this_node="gw1", database="sqlite+aiosqlite:///certgate.db",
        verdict=Verdict([node], True, "/etc/certgate/audit.pub", "/var/lib/certgate/cp.jsonl"),
        nodes=[NodeSpan("gw1", 100, at, at, 1, 1)],
        apps=[AppLine("wiki", "wiki.example.com",
                      [("alice", Reach("full", "never", (), ("wiki.allow[0]",)))],
                      [("bob", Reach("limited", "always", ("not paths /admin",), ()))])],
        users=3, disabled=["dave"], without_certificate=["bob"],
        usage=[Usage("wiki", "alice", 1234, at, at)],
        days=[DayCount("2026-10-29", 40, 3), DayCount("2026-11-20", 12, 9)],
        denials=[ReasonCount("no-matching-allow-rule", 10, 2),
                 ReasonCount("certificate-revoked", 2, 1)],
        refused_addresses=[Address("wiki.example.com", "/admin", 7, 1)],
        sign_ins=[SignIns("alice", 4, 1, 0, 0, 1)], admin_total=1,
        admin=[AdminRow(at, "gw1.cli", "cert.revoke", "root", "bob", "5F3A", "keyCompromise",
                        '{"by": "root"}')],
        issued=[CertRow("5F3B", "alice", "active", at, at + timedelta(days=365), None, None)],
        revoked=[CertRow("5F3A", "bob", "revoked", at, at, at, "keyCompromise")],
        suspended=[], expiring=[], expiring_days=30)
    return replace(base, **changes)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_verified_log_gets_the_ok_banner_and_the_figures() -> None:
    html = render_report(data())
    text = text_of(html)
    assert "Audit log check: OK" in text and "FAILED" not in text
    assert "All 120 records of 1 gateway(s)" in text
    assert "alice 1,234 2026-10-29 00:00 UTC" in text
    assert "no-matching-allow-rule You are not allowed to use this application. 10 2" in text
    assert "Disabled accounts (no access at all): dave." in text
    assert "root Certificate: cert.revoke bob certificate 5F3A keyCompromise · by: root" in text
    assert "bob + code not paths /admin" in text


def test_a_broken_log_gets_the_failed_banner_naming_node_and_record() -> None:
    broken = NodeResult("gw2", records=50, first_seq=1, last_seq=50,
                        breaks=[Break(17, "edited", "record 17 was edited: its content no "
                                                    "longer matches its hash")])
    verdict = Verdict([NodeResult("gw1", records=3), broken], True, "audit.pub", "cp.jsonl")
    text = text_of(render_report(data(verdict=verdict)))
    assert "Audit log check: FAILED" in text and "Audit log check: OK" not in text
    assert "Gateway gw2 : record 17 was edited" in text
    assert "FAILED at record 17 (edited)" in text


@pytest.mark.parametrize(("signed", "records", "banner"), [
    (False, 5, "Audit log check: OK, but not complete"),
    (True, 0, "Audit log check: nothing to check"),
])
def test_unsigned_and_empty_logs_say_so(signed: bool, records: int, banner: str) -> None:
    verdict = Verdict([NodeResult("gw1", records=records)], signed, None, "cp.jsonl")
    assert banner in text_of(render_report(data(verdict=verdict)))


def test_everything_from_the_records_is_escaped() -> None:
    at = SINCE + timedelta(days=1)
    html = render_report(data(
        refused_addresses=[Address(HOSTILE, "/" + HOSTILE, 3, 0)],
        usage=[Usage(HOSTILE, "<b>eve</b>", 1, at, at)],
        denials=[ReasonCount(HOSTILE, 1, 0)],
        sign_ins=[SignIns(HOSTILE, 1, 0, 0, 0, 0)],
        admin=[AdminRow(at, HOSTILE, HOSTILE, "<img src=x onerror=alert(1)>", HOSTILE, HOSTILE,
                        HOSTILE, '{"note": "</code><script>alert(2)</script>"}')],
        nodes=[NodeSpan(HOSTILE, 1, at, at, 0, 0)],
        verdict=Verdict([NodeResult(HOSTILE, records=1, breaks=[Break(1, "edited", HOSTILE)])],
                        True, HOSTILE, HOSTILE)))
    assert "<script" not in html.lower() and "<img" not in html.lower() and "<b>eve" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_page_is_self_contained() -> None:
    html = render_report(data())
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"(src|href)\s*=\s*\"(?!#)", html), "only in-page links"
    assert "url(" not in html
    assert html.count("<svg") == 2


def test_the_charts_scale_and_fill_empty_days() -> None:
    chart = time_chart(date(2026, 11, 1), date(2026, 11, 7), [("2026-11-03", 50, 10)])
    assert chart.unit == "day" and len(chart.slots) == 7
    third = chart.slots[2]
    assert (third.allowed.value, third.denied.value) == (50, 10)
    assert third.allowed.height == pytest.approx(200) and third.denied.height == pytest.approx(40)
    assert [t.value for t in chart.ticks] == [0, 12, 25, 37, 50]
    assert all(s.allowed.height == 0 for i, s in enumerate(chart.slots) if i != 2)
    year = time_chart(date(2026, 1, 1), date(2026, 12, 31), [("2026-03-04", 1, 0)])
    assert year.unit == "week" and len(year.slots) == 53
    long = time_chart(date(2020, 1, 1), date(2026, 12, 31), [])
    assert long.unit == "month" and len(long.slots) == 84
    bars = reason_chart([("a", 10), ("b", 5)]).bars
    assert bars[1].width == pytest.approx(bars[0].width / 2)


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright module is not installed"
    return None


@pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))
async def test_chromium_renders_the_report_without_fetching_anything(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    page_file = tmp_path / "report.html"
    page_file.write_text(render_report(data()), encoding="utf-8")
    requested: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM),
                                           args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900},
                                          java_script_enabled=False)
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(page_file.as_uri())
            shot = tmp_path / "report.png"
            await page.screenshot(path=str(shot), full_page=True)
            banner = await page.inner_text(".banner")  # with scripts off: none needed
        finally:
            await browser.close()
    assert requested == [page_file.as_uri()], "the report fetched something besides itself"
    assert banner.startswith("Audit log check: OK")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
