"""A real gateway whose audit log stops taking writes (a directory put where the
file was, which stops root too): it keeps every record, says so in ``/readyz`` and
the metrics, refuses requests with ``audit.on_failure: deny``, and writes the kept
records in order once the log works again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.gateway.conftest import Gateway

WAIT = 5.0  # failure shows at the next flush (0.2 s), recovery at the next retry (1 s)


async def admin(gw: Gateway, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{gw.admin_port}{path}") as resp:
        return resp.status, (await resp.json() if path == "/readyz" else await resp.text())


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def break_audit_log(gw: Gateway) -> Path:
    """Rename the audit file away and put a directory in its place; wait until the
    writer has noticed."""
    path = gw.runtime.audit.path
    await gw.request("GET", "/before")
    await gw.wait_for(lambda: _true(path.exists() and "/before" in path.read_text()), WAIT)
    path.rename(path.with_name("audit.jsonl.old"))
    path.mkdir()
    await gw.request("GET", "/noticed")
    await gw.wait_for(lambda: _true(gw.runtime.audit.failing), WAIT)
    return path


async def _true(value: bool) -> bool:
    return value


async def test_a_failing_audit_log_is_degraded_and_loses_nothing(gateway: Gateway) -> None:
    gw = gateway
    path = await break_audit_log(gw)
    for n in range(3):
        status, _, _ = await gw.request("GET", f"/during/{n}")
        assert status == 200  # keep-serving is the default
    status, ready = await admin(gw, "/readyz")
    assert status == 200 and ready["ready"] is True and ready["status"] == "degraded"
    [audit] = ready["degraded"]
    assert audit["component"] == "audit" and "Is a directory" in audit["reason"]
    assert str(path) in audit["reason"] and audit["since"] and audit["spooled_records"] >= 4
    assert audit["refusing_requests"] is False
    _, metrics = await admin(gw, "/metrics")
    assert "certgate_audit_failing 1.0" in metrics
    assert "certgate_audit_spooled_records 0.0" not in metrics

    path.rmdir()
    await gw.wait_for(lambda: _true(not gw.runtime.audit.failing), WAIT)
    paths = [r["path"] for r in records(path)]
    assert paths == ["/noticed", "/during/0", "/during/1", "/during/2"]
    status, ready = await admin(gw, "/readyz")
    assert (status, ready["status"], ready["degraded"]) == (200, "ok", [])
    _, metrics = await admin(gw, "/metrics")
    assert "certgate_audit_failing 0.0" in metrics
    assert "certgate_audit_spooled_records 0.0" in metrics


async def test_on_failure_deny_refuses_while_no_record_can_be_kept(gateway: Gateway) -> None:
    gw = gateway
    cfg = yaml.safe_load(gw.config_path.read_text())
    cfg["audit"]["on_failure"] = "deny"
    gw.config_path.write_text(yaml.safe_dump(cfg))
    assert gw.runtime.reload(gw.config_path)
    path = await break_audit_log(gw)

    status, body, _ = await gw.request("GET", "/refused")
    assert (status, body["error"]) == (503, "audit-unavailable")
    status, page, _ = await gw.request("GET", "/refused-page", headers={"Accept": "text/html"})
    assert status == 503 and b"audit log cannot be written" in page
    _, ready = await admin(gw, "/readyz")
    assert ready["degraded"][0]["refusing_requests"] is True
    assert [r for r in gw.seen.requests if r["path"].startswith("/refused")] == []

    path.rmdir()
    await gw.wait_for(lambda: _true(not gw.runtime.audit.failing), WAIT)
    status, _, _ = await gw.request("GET", "/after")
    assert status == 200
    kept = {r["path"]: r for r in records(path)}
    assert kept["/refused"]["reason"] == "audit-unavailable"
    assert kept["/refused"]["reference"] == body["reference"] and kept["/refused"]["status"] == 503
