"""A real HAProxy in TCP mode with ``send-proxy-v2`` in front of two `certgate serve`
processes on one database: client certificates pass through (TLS ends on the nodes),
each node's audit trail has the client's address from the header, and a PROXY header
from an address that is not a balancer is refused.

HAProxy runs on loopback, so the address it sends is 127.0.0.1; that the header (not
the socket) is what counts is shown by a hand-built header claiming 203.0.113.7 sent
to a node straight from the allowed address. Skips only when haproxy is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.http.proxyproto import build_header
from gateway.store.db import sqlite_url
from tests.gateway.conftest import Template, free_port
from tests.gateway.test_server import serve_node
from tests.gateway.upstreams import Seen, start, upstream_app

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")
HAPROXY_CFG = """\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend certgate
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance roundrobin
    server node-a 127.0.0.1:{a} send-proxy-v2
    server node-b 127.0.0.1:{b} send-proxy-v2
"""


def node_config(data_dir: Path, name: str, upstream: str) -> Path:
    """Node ``name``'s config: node-a in ``data_dir``, another node in a copy of it (the
    same keys; its own spool, audit file, checkpoints and lock, as two nodes must
    have), both on ``data_dir``'s database."""
    cfg = yaml.safe_load((data_dir / "certgate.yaml").read_text())
    cfg.setdefault("database_url", sqlite_url(data_dir / "certgate.db"))
    if name != "node-a":
        data_dir = shutil.copytree(data_dir, data_dir.parent / f"gw-{name}",
                                   ignore=shutil.ignore_patterns("certgate.db*", "serve.lock"))
    cfg.update(node=name, listen="127.0.0.1:0", admin_listen="127.0.0.1:0",
               pki_listen="127.0.0.1:0",
               proxy_protocol={"allowed_sources": ["127.0.0.1"]},
               audit={**(cfg.get("audit") or {}), "path": f"audit/{name}.jsonl",
                      "checkpoints": f"audit/{name}-checkpoints.jsonl"},
               apps=[{"name": "wiki", "host": "wiki.test", "upstream": upstream,
                      "allow": [{"groups": ["staff"]}]}])
    path = data_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@contextlib.asynccontextmanager
async def haproxy(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """HAProxy in the foreground with ``config``; stopped by its PID."""
    check = await asyncio.create_subprocess_exec(HAPROXY, "-c", "-q", "-f", str(config))
    assert await check.wait() == 0
    proc = await asyncio.create_subprocess_exec(HAPROXY, "-db", "-f", str(config),
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def reachable(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts on ``port`` (HAProxy binds after it parsed its config)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def curl(port: int, certs: tuple[Path, Path], ca: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "10", "--cacert", str(ca), "--cert", str(certs[0]),
        "--key", str(certs[1]), "--resolve", f"wiki.test:{port}:127.0.0.1",
        "-o", "/dev/null", "-w", "%{http_code}", f"https://wiki.test:{port}/hello",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return int(out or b"0"), err.decode()


async def records(path: Path, wanted: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The node's audit file once it holds ``wanted`` request records for wiki."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        found = [r for r in map(json.loads, lines) if r.get("app") == "wiki"]
        if len(found) >= wanted or loop.time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def send_raw(port: int, header: bytes, ctx: ssl.SSLContext, *,
                   source: str = "127.0.0.1") -> int:
    """A request straight to a node after ``header``; its status (0: closed before TLS)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(header)
        await writer.drain()
        try:
            await writer.start_tls(ctx, server_hostname="wiki.test")
        except (ssl.SSLError, ConnectionError):
            return 0
        writer.write(b"GET /hello HTTP/1.1\r\nHost: wiki.test\r\nConnection: close\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 10)
        return int(raw.split()[1]) if raw else 0
    finally:
        writer.close()


async def metric(admin_port: int, name: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", admin_port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    text = (await reader.read()).decode()
    writer.close()
    return next((line for line in text.splitlines() if line.startswith(name)), "")


@pytest.mark.slow
async def test_haproxy_in_front_of_two_nodes(tmp_path: Path,
                                             gateway_template: Template) -> None:
    data_dir, certs = await asyncio.to_thread(gateway_template.copy_to, tmp_path)
    seen = Seen()
    runner, upstream_port = await start(upstream_app(seen))
    upstream = f"http://127.0.0.1:{upstream_port}"
    ca = data_dir / "ca" / "root.pem"
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(*[str(p) for p in certs["alice"]])
    try:
        # Both configs before either node runs: node B's copy of the data dir is taken
        # while nothing writes in it.
        config_a = node_config(data_dir, "node-a", upstream)
        config_b = node_config(data_dir, "node-b", upstream)
        home_b = config_b.parent
        async with serve_node(config_a, tmp_path) as a, serve_node(config_b, tmp_path) as b:
            port = free_port()
            cfg = tmp_path / "haproxy.cfg"
            cfg.write_text(HAPROXY_CFG.format(port=port, a=a.port, b=b.port))
            async with haproxy(cfg):
                await reachable(port)
                # Round robin: four connections, two on each node, each with alice's
                # certificate checked by the node itself.
                results = [await curl(port, certs["alice"], ca) for _ in range(4)]
                assert [status for status, _ in results] == [200] * 4, results
                trail = {name: await records(home / "audit" / f"{name}.jsonl", 2)
                         for name, home in (("node-a", data_dir), ("node-b", home_b))}
                for found in trail.values():
                    assert [(r["source_ip"], r["status"]) for r in found] == [
                        ("127.0.0.1", 200)] * 2
            assert len(seen.requests) == 4

            # The header, not the socket: a client HAProxy would have named 203.0.113.7.
            claim = build_header(("203.0.113.7", 40000), ("127.0.0.1", b.port))
            assert await send_raw(b.port, claim, ctx) == 200
            found = await records(home_b / "audit" / "node-b.jsonl", 3)
            assert found[-1]["source_ip"] == "203.0.113.7"

            # Not a balancer: 127.0.0.2 may connect as itself, never send a header.
            assert await send_raw(a.port, claim, ctx, source="127.0.0.2") == 0
            assert await send_raw(a.port, b"", ctx, source="127.0.0.2") == 200
            admin_a = int(next(line for line in a.log if "certgate ready" in line)
                          .split("admin http://127.0.0.1:")[1].split()[0])
            line = await metric(admin_a, "certgate_proxy_protocol_refused_total")
            assert line == 'certgate_proxy_protocol_refused_total{reason="unlisted-source"} 1.0'
            assert any("closed a connection from 127.0.0.2" in entry and "not in "
                       "proxy_protocol.allowed_sources" in entry for entry in a.log)
        for node in (a, b):  # stopped by now: cleanly, the listener included
            assert node.proc.returncode == 0, "".join(node.log)
            assert "Traceback" not in "".join(node.log)
    finally:
        await runner.cleanup()

