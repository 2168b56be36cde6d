"""A real gateway's audit trail: every request one chained record in the database, with
start and stop around them, checkpoints in the table and the file, and a log that
verifies with the public key ``init`` wrote."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audit.assembly import build_audit_writer
from gateway.audit.keys import load_audit_public_key
from gateway.config import load_config
from gateway.http.exchange import Exchange
from gateway.manage.audit import verify_audit
from gateway.runtime import Runtime
from gateway.store.store import Store
from policies.model import Reason
from tests.gateway.audit.helpers import stored
from tests.gateway.conftest import Gateway, Template


@pytest.mark.config(audit={"checkpoint_every": 2})
async def test_every_request_is_a_chained_record_that_verifies(gateway: Gateway) -> None:
    runtime = gateway.runtime
    assert (await gateway.request("GET", "/hello"))[0] == 200
    status, body, _ = await gateway.request("GET", "/admin")  # denied by the wiki's rule
    assert status == 403
    await runtime.audit.flush()
    rows = await stored(runtime.store, runtime.audit.node)
    assert rows[0]["type"] == "gateway.start" and rows[0]["seq"] == 1
    assert json.loads(rows[0]["detail"])["node"] == runtime.audit.node
    access = [r for r in rows if r["type"] == "access"]
    assert [r["path"] for r in access] == ["/hello", "/admin"]
    assert access[0]["user"] == "alice" and access[0]["decision"] == "allow"
    assert access[1]["reference"] == body["reference"] and access[1]["decision"] == "deny"
    config = runtime.state.config
    result = await verify_audit(runtime.store,
                                public_key=load_audit_public_key(config.audit.public_key),
                                checkpoint_file=config.audit.checkpoints)
    assert result.ok and result.nodes[0].checkpoints >= 1
    assert config.audit.checkpoints.exists()


async def test_a_stop_is_recorded_and_checkpointed(tmp_path: Path,
                                                  gateway_template: Template) -> None:
    gw, _ = await asyncio.to_thread(gateway_template.copy_to, tmp_path)
    config = load_config(gw / "certgate.yaml")
    runtime = await Runtime.start(config)
    node = runtime.audit.node
    await runtime.stop()
    await runtime.stop()  # a second stop records nothing more
    store = await Store.open(config.database_url)
    try:
        rows = await stored(store, node)
        assert [r["type"] for r in rows] == ["gateway.start", "gateway.stop"]
        [checkpoint] = await store.audit_checkpoints(node)
        assert (checkpoint["seq"], checkpoint["hash"]) == (2, rows[-1]["hash"])
    finally:
        await store.close()
    line = json.loads(config.audit.checkpoints.read_text().splitlines()[-1])
    assert line == checkpoint


async def test_an_install_without_the_audit_key_starts_and_says_so(
        tmp_path: Path, gateway_template: Template, caplog: pytest.LogCaptureFixture) -> None:
    gw, _ = await asyncio.to_thread(gateway_template.copy_to, tmp_path)
    (gw / "audit.key").unlink()
    runtime = await Runtime.start(load_config(gw / "certgate.yaml"))
    await runtime.stop()
    assert any("no audit key at" in r.getMessage() and "certgate init" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize(("reason", "kind"), [
    (Reason.LOGIN_SUCCEEDED, "login"), (Reason.LOGIN_FAILED, "login"),
    (Reason.LOCKED_OUT, "login"), (Reason.LOGGED_OUT, "session.end"),
    (Reason.DENIED_BY_RULE, "access")])
async def test_sign_in_and_sign_out_requests_are_typed(gateway: Gateway, reason: Reason,
                                                       kind: str) -> None:
    runtime = gateway.runtime
    exchange = Exchange("0123456789ab", datetime.now(UTC), "POST", "secure.test", "192.0.2.7",
                        "/.certgate/login", None, reason=reason, status=401)
    runtime.record(exchange, 0.001)
    await runtime.audit.flush()
    [row] = [r for r in await stored(runtime.store, runtime.audit.node)
             if r["reference"] == "0123456789ab"]
    assert (row["type"], row["reason"]) == (kind, reason.value)


async def test_forked_workers_keep_their_own_chain_and_spool(
        tmp_path: Path, gateway_template: Template) -> None:
    gw, _ = await asyncio.to_thread(gateway_template.copy_to, tmp_path)
    config = load_config(gw / "certgate.yaml")
    store = await Store.open(config.database_url)
    try:
        first, third = build_audit_writer(config, store), build_audit_writer(config, store, 2)
        assert (first.node, third.node) == (config.node, f"{config.node}-w2")
        assert first.spool_path == config.data_dir / "audit-spool.jsonl"
        assert third.spool_path == config.data_dir / "audit-spool-w2.jsonl"
    finally:
        await store.close()
