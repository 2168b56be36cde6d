"""The gateway's own events in the audit trail, each with its fields: a proxied request's
factors, bytes and upstream time, its query redacted unless the app opts in; a config
reload (applied or refused) with the SHA-256 of the file; a CRL the background
re-signer signed. Every test reads the records back from the database. (Sign-in
factors and the lockout record: tests/gateway/auth/test_audit_records.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from gateway.server import _keep_crl_fresh
from tests.gateway.audit.helpers import stored
from tests.gateway.conftest import Gateway, apps


async def records(gw: Gateway, type_: str | None = None) -> list[dict[str, Any]]:
    await gw.runtime.audit.flush()
    rows = await stored(gw.runtime.store, gw.runtime.audit.node)
    return [r for r in rows if type_ is None or r["type"] == type_]


async def test_a_proxied_request_records_its_factors_bytes_and_upstream_time(
        gateway: Gateway) -> None:
    status, _, _ = await gateway.request("POST", "/notes?token=s3cr3t-reset-link",
                                         data=b"x" * 1000)
    assert status == 200
    [row] = [r for r in await records(gateway, "access") if r["method"] == "POST"]
    assert (row["user"], row["app"], row["factors"], row["status"]) == ("alice", "wiki",
                                                                         "cert", 200)
    assert row["path"] == "/notes?[redacted]"  # the query is not kept by default
    assert row["fingerprint"] and row["serial"] and row["source_ip"] == "127.0.0.1"
    detail = json.loads(row["detail"])
    assert detail["bytes_in"] == 1000 and detail["bytes_out"] > 0
    assert 0 < detail["upstream_ms"] <= row["duration_ms"]
    # One measurement: the metric observed the very time the record carries.
    observed = gateway.runtime.metrics.registry.get_sample_value(
        "certgate_upstream_duration_seconds_sum", {"app": "wiki"})
    assert observed is not None and round(observed * 1000, 3) == detail["upstream_ms"]
    # A refused request was not forwarded: no bytes, no upstream time; no query either.
    status, _, _ = await gateway.request("GET", "/admin?x=1")
    assert status == 403
    denied = (await records(gateway, "access"))[-1]
    assert (denied["path"], denied["detail"], denied["factors"]) == ("/admin?[redacted]",
                                                                      None, "cert")
    # No known certificate: no factor passed.
    status, _, _ = await gateway.request("GET", "/", user=None)
    assert (await records(gateway, "access"))[-1]["factors"] is None


@apps(wiki={"audit_query": True})
async def test_an_app_that_opts_in_keeps_its_query(gateway: Gateway) -> None:
    assert (await gateway.request("GET", "/search?q=invoice+2026"))[0] == 200
    assert (await gateway.request("GET", "/search?q=x", host="portal.test"))[0] == 403
    wiki, portal = (await records(gateway, "access"))[-2:]
    assert wiki["path"] == "/search?q=invoice+2026"
    assert portal["path"] == "/search?[redacted]"  # another app: still redacted


async def test_a_reload_is_recorded_with_the_hash_of_the_policy(gateway: Gateway) -> None:
    path = gateway.config_path
    cfg = yaml.safe_load(path.read_text())
    cfg["apps"][0]["allow"] = [{"groups": ["staff", "sales"]}]
    path.write_text(yaml.safe_dump(cfg))
    applied_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    assert gateway.runtime.reload(path)
    cfg["apps"][0]["audit_query"] = "yes"  # not a boolean: refused
    path.write_text(yaml.safe_dump(cfg))
    assert not gateway.runtime.reload(path)
    applied, refused = await records(gateway, "policy.reload")
    assert (applied["reason"], applied["decision"]) == ("applied", "allow")
    assert json.loads(applied["detail"]) == {"file": str(path), "sha256": applied_hash,
                                             "apps": len(cfg["apps"])}
    assert (refused["reason"], refused["decision"]) == ("refused", "deny")
    detail = json.loads(refused["detail"])
    assert detail["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() != applied_hash
    assert "audit_query" in detail["error"]
    start = (await records(gateway, "gateway.start"))[0]
    assert len(json.loads(start["detail"])["sha256"]) == 64


async def test_the_background_re_signer_records_each_crl(gateway: Gateway) -> None:
    store, runtime = gateway.runtime.store, gateway.runtime
    old = datetime.now(UTC) - timedelta(days=2)  # past half its life: due at once
    await store.record_crl(await store.next_crl_number(), old, old + timedelta(days=1), b"old")
    task = asyncio.create_task(_keep_crl_fresh(runtime, runtime.state.config))
    try:
        async def signed() -> list[dict[str, Any]]:
            return await records(gateway, "crl.sign")
        await gateway.wait_for(signed, timeout=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    [row] = await records(gateway, "crl.sign")
    latest = await store.latest_crl()
    assert latest is not None
    detail = json.loads(row["detail"])
    assert (detail["crl_number"], detail["by"]) == (latest[0], "re-signer")
    assert row["reason"] == "re-signed" and row["at"].endswith("Z")
