"""Doctor checks that need the database: reachable, migrated to the newest revision,
its clock against this machine's (TOTP depends on it), the CRL's nextUpdate, the
newest issued client certificate, and each node's audit chain head.

Opens its own short-lived engine with a timeout and never migrates or writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from cryptography import x509
from sqlalchemy import text

from gateway.audit.chain import hash_of
from gateway.config import Config
from gateway.ops.doctor.findings import Finding, failed, passed, warned
from gateway.ops.filemodes import database_file
from gateway.store.db import MIGRATIONS, make_engine, safe_url, short_cause
from gateway.store.records import CertStatus
from gateway.store.store import Store

SKEW_WARN = 5.0  # seconds; a TOTP code is accepted within one 30 s step either side
SKEW_FAIL = 30.0


@dataclass
class DatabaseReport:
    findings: list[Finding] = field(default_factory=list)
    newest_certificate: x509.Certificate | None = None
    reachable: bool = False


def head_revision() -> str:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    return str(head)


async def check_database(config: Config, *, now: datetime, within: float,
                         wall: Callable[[], float] = time.time) -> DatabaseReport:
    """All database checks; one failure when it can't be reached (the rest need it)."""
    report = DatabaseReport()
    url = config.database_url
    if (path := database_file(config)) is not None and not path.exists():
        # Connecting would create an empty file: look, don't touch.
        report.findings.append(failed("database", f"there is no database at {path}",
                                      "restore it from your backup, correct database_url, "
                                      "or run `certgate db upgrade` to create an empty one"))
        return report
    engine = make_engine(url)
    try:
        async with asyncio.timeout(within):
            async with engine.connect() as conn:
                before = wall()
                clock = (await conn.execute(text("SELECT CURRENT_TIMESTAMP"))).scalar_one()
                after = wall()
                revision = (await conn.execute(text(
                    "SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    except TimeoutError:
        report.findings.append(_unreachable(url, f"no answer within {within:.0f} s"))
        await engine.dispose()
        return report
    except Exception as exc:
        if "alembic_version" in str(exc):
            report.findings.append(failed("database", f"{safe_url(url)} has no certgate schema",
                                          "run `certgate db upgrade` (or `certgate init`)"))
        else:
            report.findings.append(_unreachable(url, short_cause(exc)))
        await engine.dispose()
        return report
    report.reachable = True
    report.findings.append(passed("database", f"{safe_url(url)} answers"))
    head = head_revision()
    if revision != head:
        report.findings.append(failed(
            "migrations", f"the schema is at revision {revision}, this certgate needs {head}",
            "run `certgate db upgrade` (`certgate serve` also applies it at start)"))
    else:
        report.findings.append(passed("migrations", f"the schema is at the newest revision "
                                                    f"({head})"))
    report.findings.append(_skew(url, clock, (before + after) / 2))
    store = Store(engine, url)
    try:
        async with asyncio.timeout(within * 4):
            report.findings.append(await _crl(store, now))
            report.findings.append(await _audit_heads(store))
            report.newest_certificate = await _newest_certificate(store)
    except TimeoutError:
        report.findings.append(warned("database", "the database answered, then became too "
                                                  "slow to finish the checks",
                                      "look at the database server's load"))
    except Exception as exc:  # a table that can't be read: say so, don't stop the doctor
        report.findings.append(failed("database", f"reading the database failed: "
                                                  f"{short_cause(exc)}",
                                      "run `certgate db upgrade`, then look at the "
                                      "database server's log"))
    finally:
        await store.close()
    return report


def _unreachable(url: str, why: str) -> Finding:
    return failed("database", f"cannot reach the database at {safe_url(url)}: {why}",
                  "start the database or correct database_url; a running gateway keeps "
                  "serving from memory and spools its audit records meanwhile")


def _skew(url: str, db_clock: object, local: float) -> Finding:
    if url.startswith("sqlite"):
        return passed("clock", "SQLite runs on this machine: one clock")
    if not isinstance(db_clock, datetime):
        return warned("clock", "the database did not say its time", "check the database")
    at = db_clock if db_clock.tzinfo else db_clock.replace(tzinfo=UTC)
    skew = at.timestamp() - local
    text_ = f"the database's clock is {abs(skew):.1f} s {'ahead of' if skew > 0 else 'behind'} " \
            "this machine's"
    fix = "run NTP (chrony or systemd-timesyncd) on both machines; TOTP codes and " \
          "certificate times depend on it"
    if abs(skew) > SKEW_FAIL:
        return failed("clock", text_, fix)
    if abs(skew) > SKEW_WARN:
        return warned("clock", text_, fix)
    return passed("clock", text_)


async def _crl(store: Store, now: datetime) -> Finding:
    latest = await store.latest_crl()
    if latest is None:
        return failed("crl", "no CRL has been published", "run `certgate crl`")
    number, this_update, next_update, _ = latest
    this_update = this_update if this_update.tzinfo else this_update.replace(tzinfo=UTC)
    next_update = next_update if next_update.tzinfo else next_update.replace(tzinfo=UTC)
    fix = "start the gateway with its CA key available (it re-signs the CRL at half its " \
          "validity; pki.ca_passphrase_file for an encrypted key), or run `certgate crl`"
    if now >= next_update:
        return failed("crl", f"CRL number {number} expired on {next_update:%Y-%m-%d %H:%M} UTC: "
                             "relying parties that check it refuse every certificate", fix)
    half = this_update + (next_update - this_update) / 2
    if now >= half + timedelta(minutes=5):
        return warned("crl", f"CRL number {number} expires on {next_update:%Y-%m-%d %H:%M} UTC "
                             "and was not re-signed at half its validity", fix)
    return passed("crl", f"CRL number {number} is valid until {next_update:%Y-%m-%d %H:%M} UTC")


async def _audit_heads(store: Store) -> Finding:
    """The newest two stored records of each node hash and link."""
    nodes = await store.audit_nodes()
    broken = []
    for node in nodes:
        head = await store.audit_head(node)
        if head is None:
            continue
        rows: list[dict[str, object]] = []
        async for page in store.audit_rows(node, from_seq=max(1, head[0] - 1)):
            rows.extend(page)
            break
        for i, row in enumerate(rows):
            if hash_of(str(row["prev_hash"]), row) != row["hash"]:
                broken.append(f"{node} record {row['seq']} does not match its hash")
            elif i and row["prev_hash"] != rows[i - 1]["hash"]:
                broken.append(f"{node} record {row['seq']} does not link to record "
                              f"{rows[i - 1]['seq']}")
    if broken:
        return failed("audit-chain", "; ".join(broken),
                      "run `certgate audit verify` to find every break, and treat it as a "
                      "possible tampering: keep a copy of the database")
    if not nodes:
        return passed("audit-chain", "no audit records yet")
    return passed("audit-chain", f"the newest audit records of {len(nodes)} node(s) link")


async def _newest_certificate(store: Store) -> x509.Certificate | None:
    active = await store.list_certificates(status=CertStatus.ACTIVE)
    if not active:
        return None
    return x509.load_pem_x509_certificate(active[-1].pem.encode())
