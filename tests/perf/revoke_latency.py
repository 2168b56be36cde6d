"""Revoke -> deny latency across two `certgate serve` nodes on one PostgreSQL.

Not a test: run it by hand (docs/performance.md has the figures).

    CERTGATE_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python tests/perf/revoke_latency.py [--revocations 50]

It creates (and drops) its own database, starts two real nodes (real TLS, their own
node names) twice: once as shipped (LISTEN/NOTIFY, catch-up read every 2 s) and
once with ``database_listen: false`` (the follower polls every 0.25 s). For each
revocation a fresh certificate holds one open keep-alive connection to each node,
both answered 200; the certificate is revoked in the database (the same store call
as `certgate cert revoke`, so a CLI's start-up time is not measured) and each
connection asks again every 2 ms until it is denied. The latency is from the start
of the revoking transaction to the first denied answer, per node; p50, p99 and the
maximum over all of them. Targets: p99 <= 1 s; aim <= 100 ms with NOTIFY.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.serialization import Encoding

from gateway.store.records import CertRecord, CertStatus
from gateway.store.store import Store
from pki.ca import load_ca
from pki.keys import fingerprint_sha256
from tests.conftest import PG_ENV, _create_pg_database, _drop_pg_database
from tests.gateway.conftest import craft_cert, write_pair
from tests.gateway.nodes import Client, Cluster, prepare, two_nodes
from tests.gateway.test_server import Node
from tests.gateway.upstreams import Seen, start, upstream_app


async def add_certificates(cluster: Cluster, count: int, prefix: str) -> dict[str, int]:
    """``count`` fresh certificates of alice's, each with its key file: name -> serial."""
    ca = load_ca(cluster.root / "a" / "ca", None)
    now = datetime.now(UTC)
    serials = {}
    store = await Store.open(cluster.database_url, migrate=False)
    try:
        for i in range(count):
            cert, key = craft_cert(ca, "alice", not_before=now - timedelta(minutes=5),
                                   not_after=now + timedelta(days=1))
            name = f"{prefix}{i}"
            cluster.certs[name] = write_pair(cert, key, cluster.root / name)
            await store.add_certificate(CertRecord(
                serial=cert.serial_number, user="alice", fingerprint=fingerprint_sha256(cert),
                subject=cert.subject.rfc4514_string(), not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc, status=CertStatus.ACTIVE, issued_at=now,
                pem=cert.public_bytes(Encoding.PEM).decode()))
            serials[name] = cert.serial_number
    finally:
        await store.close()
    return serials


async def deny_latency(client: Client, nodes: tuple[Node, Node], store: Store,
                       serial: int) -> tuple[float, list[float]]:
    """Revoke ``serial``; the seconds until its transaction committed, and until each
    node's open connection was denied."""
    async with client.session() as on_a, client.session() as on_b:
        for node, session in zip(nodes, (on_a, on_b), strict=True):
            status, body = await client.get(node, session=session)
            assert status == 200, body

        async def until_denied(node: Node, session: object, t0: float) -> float:
            while True:
                status, _ = await client.get(node, session=session)  # type: ignore[arg-type]
                if status == 403:
                    return time.perf_counter() - t0
                await asyncio.sleep(0.002)

        async def revoke(t0: float) -> float:
            await store.revoke_certificate(serial, reason="keyCompromise", at=datetime.now(UTC))
            return time.perf_counter() - t0

        t0 = time.perf_counter()
        committed, *took = await asyncio.wait_for(asyncio.gather(
            revoke(t0), until_denied(nodes[0], on_a, t0), until_denied(nodes[1], on_b, t0)), 10)
        return committed, took


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    return {"n": len(ordered), "p50_ms": round(pct(50), 1), "p99_ms": round(pct(99), 1),
            "max_ms": round(ordered[-1] * 1000, 1),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1)}


async def measure(cluster: Cluster, listen: bool, revocations: int) -> dict[str, object]:
    for path in cluster.configs:
        cfg = yaml.safe_load(path.read_text())
        cfg["database_listen"] = listen
        path.write_text(yaml.safe_dump(cfg))
    serials = await add_certificates(cluster, revocations, "notify" if listen else "poll")
    store = await Store.open(cluster.database_url, migrate=False)
    samples: list[float] = []
    commits: list[float] = []
    try:
        async with two_nodes(cluster) as nodes:
            await asyncio.sleep(1.0)  # let both listeners connect before the first sample
            for name, serial in serials.items():
                committed, took = await deny_latency(cluster.client(name), nodes, store, serial)
                commits.append(committed)
                samples += took
    finally:
        await store.close()
    return {**summary(samples), "commit_p50_ms": summary(commits)["p50_ms"]}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revocations", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base = os.environ.get(PG_ENV)
    if not base:
        print(f"set {PG_ENV} to a PostgreSQL server URL", file=sys.stderr)
        return 2
    url, name = await _create_pg_database(base)
    runner, port = await start(upstream_app(Seen()))
    try:
        with tempfile.TemporaryDirectory(prefix="revoke-latency-") as tmp:
            root = Path(tmp)
            configs, certs = await asyncio.to_thread(
                prepare, root, url, f"http://127.0.0.1:{port}", {"alice": ["staff"]})
            cluster = Cluster(root, url, configs, certs, root / "a" / "ca" / "root.pem", {})
            results = {"notify": await measure(cluster, True, args.revocations),
                       "poll": await measure(cluster, False, args.revocations)}
    finally:
        await runner.cleanup()
        await _drop_pg_database(base, name)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        keys = ("n", "p50_ms", "p99_ms", "max_ms", "mean_ms", "commit_p50_ms")
        print(f"{'mode':8}" + "".join(f"{k:>14}" for k in keys))
        for mode, r in results.items():
            print(f"{mode:8}" + "".join(f"{r[k]!s:>14}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
