"""``certgate audit verify`` as a reviewer runs it: OK with counts per node, or the node,
seq and kind of the first broken record with exit code 1; errors are one sentence."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import yaml

from gateway.audit.assembly import build_audit_writer
from gateway.config import load_config
from gateway.store.store import Store
from tests.gateway.audit.helpers import immutable, record
from tests.gateway.cli.conftest import Certgate


def write_records(config_path: Path, count: int) -> None:
    async def go() -> None:
        config = load_config(config_path)
        store = await Store.open(config.database_url)
        try:
            writer = build_audit_writer(config, store)
            await writer.start()
            for n in range(count):
                writer.emit(record(n))
            await writer.close()
        finally:
            await store.close()
    asyncio.run(go())


def set_node(cg: Certgate, node: str) -> None:
    cfg = yaml.safe_load(cg.config.read_text())
    cfg["node"] = node
    cg.config.write_text(yaml.safe_dump(cfg))


def test_init_creates_the_audit_key_pair(cg: Certgate) -> None:
    assert stat.S_IMODE((cg.data_dir / "audit.key").stat().st_mode) == 0o600
    assert (cg.data_dir / "audit.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_an_empty_log_has_nothing_to_verify(cg: Certgate) -> None:
    assert "no audit records yet" in cg.ok("audit", "verify").out


def test_an_untouched_log_verifies_and_an_edit_is_named(cg: Certgate) -> None:
    set_node(cg, "gw1")
    write_records(cg.config, 5)
    result = cg.ok("audit", "verify")
    assert "node gw1: OK, 5 record(s) (seq 1-5), 1 signed checkpoint(s) match" in result.out
    assert "audit verify: OK, 5 record(s) on 1 node(s)" in result.out

    with sqlite3.connect(cg.data_dir / "certgate.db") as db:
        db.execute("UPDATE audit_records SET user = 'mallory' WHERE seq = 3")
    result = cg("audit", "verify")
    assert result.code == 1
    assert "node gw1: BROKEN at seq 3 (edited)" in result.out
    assert "seq 3: edited: record 3 was edited" in result.out
    # The first verify was itself recorded, on the admin chain beside gw1, which verifies.
    assert "node gw1.cli: OK, 1 record(s) (seq 1-1), 1 signed checkpoint(s) match" in result.out
    assert "FAILED for 1 of 2 node(s): gw1" in result.out
    data = cg("audit", "verify", "--json").json()
    assert data["ok"] is False
    assert data["nodes"][0]["problems"][0] == {
        "seq": 3, "kind": "edited",
        "message": "record 3 was edited: its content no longer matches its hash"}


def test_a_cut_tail_is_found_through_the_checkpoint_file(cg: Certgate) -> None:
    set_node(cg, "gw1")
    write_records(cg.config, 6)
    with sqlite3.connect(cg.data_dir / "certgate.db") as db:
        db.execute("DELETE FROM audit_records WHERE seq > 4")
        db.execute("DELETE FROM audit_checkpoints")
    result = cg("audit", "verify")
    assert result.code == 1 and "node gw1: BROKEN at seq 5 (truncated)" in result.out


def test_mistakes_are_one_sentence(cg: Certgate, tmp_path: Path) -> None:
    result = cg("audit", "verify", "--since", "yesterday")
    assert result.code == 1 and result.err.startswith("certgate: --since 'yesterday' is "
                                                      "neither a duration")
    result = cg("audit", "verify", "--public-key", str(tmp_path / "none.pub"))
    assert result.code == 1 and "no audit public key at" in result.err
    cfg = yaml.safe_load(cg.config.read_text())
    cfg["database_url"] = "postgresql+asyncpg://certgate@127.0.0.1:1/certgate"
    cg.config.write_text(yaml.safe_dump(cfg))
    result = cg("audit", "verify")
    assert result.code == 1 and result.err.startswith("certgate: cannot reach the database")
    assert len(result.err.strip().splitlines()) == 1


def test_report_writes_the_review_and_refuses_to_overwrite_it(cg: Certgate) -> None:
    set_node(cg, "gw1")
    write_records(cg.config, 4)
    out = cg.data_dir.parent / "review.html"
    result = cg.ok("audit", "report", "--since", "3000d", "--out", str(out))
    assert f"wrote {out}:" in result.out and "the audit log verifies" in result.out
    html = out.read_text()
    assert "Audit log check: OK" in html and "All 4 records of 1 gateway(s)" in html
    assert "<b>gw1</b>" in html  # made on this node

    again = cg("audit", "report", "--out", str(out))
    assert again.code == 1 and again.err.strip() == \
        f"certgate: {out} already exists; pass --force to replace it"
    assert out.read_text() == html

    with sqlite3.connect(cg.data_dir / "certgate.db") as db:
        db.execute("UPDATE audit_records SET user = 'mallory' WHERE seq = 3")
    failed = cg("audit", "report", "--since", "3000d", "--out", str(out), "--force")
    assert failed.code == 1 and "the audit log does NOT verify" in failed.out
    assert "Audit log check: FAILED" in out.read_text()


def test_report_refuses_a_bad_period_in_one_sentence(cg: Certgate) -> None:
    out = cg.data_dir.parent / "review.html"
    bad = cg("audit", "report", "--since", "last tuesday", "--out", str(out))
    assert bad.code == 1 and "is neither a duration (24h, 30d) nor an ISO date" in bad.err
    until = cg("audit", "report", "--until", "soon", "--out", str(out))
    assert until.code == 1 and "--until 'soon' is neither a duration before now" in until.err
    empty = cg("audit", "report", "--since", "2026-11-02", "--until", "2026-11-01",
               "--out", str(out))
    assert empty.code == 1 and "the period is empty" in empty.err
    assert not out.exists()
    missing = cg("audit", "report")
    assert missing.code == 2 and "--out" in missing.err


def test_verify_does_not_need_to_write_the_checkpoint_file(cg: Certgate) -> None:
    """A reviewer runs verify as a user who can't write the data dir: the checkpoint
    file's place must be readable, not writable. /proc/sys is read-only even for root."""
    set_node(cg, "gw1")
    write_records(cg.config, 3)
    (cg.data_dir / "audit" / "checkpoints.jsonl").unlink()  # its copy lives in the table
    cfg = yaml.safe_load(cg.config.read_text())
    cfg.setdefault("audit", {})["checkpoints"] = "/proc/sys/certgate-checkpoints.jsonl"
    cg.config.write_text(yaml.safe_dump(cfg))
    refused = cg("policy", "check")  # serving would write checkpoints there: refused
    assert refused.code == 1 and "audit.checkpoints" in refused.err + refused.out
    assert "is not writable" in refused.err + refused.out
    result = cg.ok("audit", "verify")
    assert "node gw1: OK, 3 record(s) (seq 1-3), 1 signed checkpoint(s) match" in result.out


def test_verify_of_a_read_only_database_says_the_verdict_and_warns_it_went_unrecorded(
        cg: Certgate) -> None:
    """A reviewer checks a copy they may only read: the exit code is the chain's verdict;
    that its own audit.read record could not be written is a warning (and a JSON field).
    The file is made immutable: a chmod does not stop root, who runs the tests."""
    set_node(cg, "gw1")
    write_records(cg.config, 3)
    db = cg.data_dir / "certgate.db"
    unrecorded = ("warning: the check ran and its result stands, but the audit record "
                  "audit.read could not be written: cannot write to the database at "
                  f"sqlite+aiosqlite:///{db}: attempt to write a readonly database; this run "
                  "is not in the audit trail")
    with immutable(db):
        result = cg("audit", "verify")
        assert result.code == 0, result.err
        assert "audit verify: OK, 3 record(s) on 1 node(s)" in result.out
        assert result.err.strip() == unrecorded
        result = cg("audit", "verify", "--json")
        assert result.code == 0 and result.json()["ok"] is True
        assert result.json()["read_recorded"] is False
        assert result.json()["read_record_problem"].endswith(
            "attempt to write a readonly database")
    connection = sqlite3.connect(db)
    with connection:
        connection.execute("UPDATE audit_records SET user = 'mallory' WHERE seq = 2")
    connection.close()
    with immutable(db):
        result = cg("audit", "verify")
        assert result.code == 1 and "node gw1: BROKEN at seq 2" in result.out
        assert result.err.strip() == unrecorded
    result = cg("audit", "verify", "--json")  # writable again: recorded, still broken
    assert result.code == 1 and result.json()["read_recorded"] is True
    assert result.json()["read_record_problem"] is None


def test_retention_and_syslog_are_validated_with_a_reason(cg: Certgate) -> None:
    cfg = yaml.safe_load(cg.config.read_text())
    cfg.setdefault("audit", {}).update(syslog="siem.example:514", retention="400s")
    cg.config.write_text(yaml.safe_dump(cfg))
    result = cg("policy", "check")
    text = result.err + result.out
    assert result.code == 1 and "audit.syslog" in text and "audit.retention" in text
    assert "no syslog transport certgate knows" in text and "at least 1d" in text
    cfg["audit"].update(syslog="tcp://siem.example:601", retention="400d",
                        syslog_facility="local4")
    cg.config.write_text(yaml.safe_dump(cfg))
    cg.ok("policy", "check")
    config = load_config(cg.config)
    assert config.audit.syslog == "tcp://siem.example:601"
    assert config.audit.syslog_facility == "local4"
    assert config.audit.retention is not None and config.audit.retention.days == 400
