"""``certgate serve --workers 2`` as a real process: 40 requests spread over both
workers show as 40 on ``/metrics``, whichever worker answers the scrape."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.ops.multiproc import DIRECTORY, prepare
from tests.gateway.conftest import HOST, Template, app_configs, free_port
from tests.gateway.ops.test_health import promtool_check_metrics
from tests.gateway.upstreams import Seen, start, upstream_app

REPO = Path(__file__).resolve().parents[3]


async def fixed_ports(tmp_path: Path, template: Template) -> tuple[Path, int]:
    """A gateway's data dir whose listeners have fixed free ports (workers share them);
    its config path and admin port."""
    data_dir, _ = await asyncio.to_thread(template.copy_to, tmp_path)
    admin_port = free_port()
    config_path = data_dir / "certgate.yaml"
    cfg = yaml.safe_load(config_path.read_text())
    cfg.update(listen=f"127.0.0.1:{free_port()}", admin_listen=f"127.0.0.1:{admin_port}",
               pki_listen=None)
    config_path.write_text(yaml.safe_dump(cfg))
    return config_path, admin_port


@contextlib.asynccontextmanager
async def serving(config_path: Path, workers: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """``certgate serve --workers N`` until every worker said ready; SIGTERM at the end."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli.main", "--config", str(config_path), "serve",
        "--workers", str(workers), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        ready = 0
        async with asyncio.timeout(60):
            while ready < workers:
                line = await proc.stdout.readline()
                if not line:
                    err = await proc.stderr.read() if proc.stderr else b""
                    raise AssertionError(f"serve exited: {err.decode()[-2000:]}")
                ready += line.startswith(b"certgate ready")
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(60):
                    await proc.communicate()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_forty_requests_over_two_workers_show_as_forty(
        tmp_path: Path, gateway_template: Template) -> None:
    data_dir, certs = await asyncio.to_thread(gateway_template.copy_to, tmp_path)
    runner, upstream_port = await start(upstream_app(Seen()))
    port, admin_port = free_port(), free_port()
    config_path = data_dir / "certgate.yaml"
    cfg = yaml.safe_load(config_path.read_text())
    cfg.update(listen=f"127.0.0.1:{port}", admin_listen=f"127.0.0.1:{admin_port}",
               pki_listen=None, apps=app_configs(f"http://127.0.0.1:{upstream_port}"))
    config_path.write_text(yaml.safe_dump(cfg))
    stale = data_dir / DIRECTORY / "counter_1.db"  # left by an earlier start
    stale.parent.mkdir()
    stale.write_bytes(b"not a metrics file")
    ctx = ssl.create_default_context(cafile=str(data_dir / "ca" / "root.pem"))
    ctx.load_cert_chain(*(str(p) for p in certs["alice"]))
    try:
        async with serving(config_path, 2):
            assert not stale.exists()
            for _ in range(40):  # a new connection each: the kernel spreads them
                async with aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(ssl=ctx, force_close=True)) as session, \
                        session.get(f"https://127.0.0.1:{port}/", headers={"Host": HOST},
                                    server_hostname=HOST) as resp:
                    assert resp.status == 200
            scrapes = []
            for _ in range(4):  # whichever worker answers, the sum is the same
                async with aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(force_close=True)) as session, \
                        session.get(f"http://127.0.0.1:{admin_port}/metrics") as resp:
                    assert resp.status == 200
                    scrapes.append(await resp.text())
    finally:
        await runner.cleanup()
    for text in scrapes:
        values = {(s.name, tuple(sorted(s.labels.items()))): s.value
                  for family in text_string_to_metric_families(text) for s in family.samples}
        wiki_allowed = (("app", "wiki"), ("decision", "allow"), ("status", "2xx"))
        assert values[("certgate_requests_total", wiki_allowed)] == 40
        assert values[("certgate_request_duration_seconds_count", (("app", "wiki"),))] == 40
        assert values[("certgate_upstream_duration_seconds_count", (("app", "wiki"),))] == 40
        # Node-wide gauges are merged, not added: four certificates, not eight.
        assert values[("certgate_certificates_indexed", ())] == 4
        assert values[("certgate_database_reachable", ())] == 1
    promtool_check_metrics(scrapes[-1])

    # Both workers served: each keeps its own audit chain, and together they hold 40.
    db = sqlite3.connect(data_dir / "certgate.db")
    try:
        rows = dict(db.execute("SELECT node, count(*) FROM audit_records "
                               "WHERE type = 'access' AND app = 'wiki' GROUP BY node"))
    finally:
        db.close()
    assert sum(rows.values()) == 40
    assert len(rows) == 2 and min(rows.values()) > 0, rows


def test_a_directory_that_cannot_be_made_is_refused_with_its_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "not-a-dir"
    data_dir.write_text("a file where the data dir should be")
    with pytest.raises(ValueError, match=r"cannot make .*not-a-dir/metrics.d for the workers' "
                                         r"metrics: Not a directory"):
        prepare(data_dir)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


async def test_one_process_keeps_metrics_in_memory(tmp_path: Path,
                                                   gateway_template: Template) -> None:
    """No files for a single process: nothing to add up, nothing written to disk."""
    config_path, admin_port = await fixed_ports(tmp_path, gateway_template)
    data_dir = config_path.parent
    async with serving(config_path, 1), aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{admin_port}/metrics") as resp:
        text = await resp.text()
    assert "certgate_requests_total" in text
    assert not (data_dir / DIRECTORY).exists()
