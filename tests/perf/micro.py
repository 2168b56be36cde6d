"""In-process micro-benchmarks: is per-request work flat as tables grow?

- policy decision time with 10 vs 10,000 apps
- identity lookup with 10 vs 1,000,000 certificates (100,000 of them revoked)
- startup to "ready" with 100,000 users and certificates in SQLite

Run through ``bench.py --only micro``. Results are ratios large/small; the
absolute nanoseconds are shown for orientation only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.identity.index import CertificateIndex
from gateway.store.records import CertRecord, CertStatus, IdentitySnapshot, UserRecord
from policies.engine import evaluate
from policies.loader import build_policy_set
from policies.model import AccessRequest
from policies.schema import AppPolicySpec

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def per_call_ns(fn: Callable[[], object], *, calls: int = 200_000, rounds: int = 5) -> float:
    """Best-of-rounds mean time per call: the least disturbed round on a shared machine."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


def decision_ns(apps: int) -> float:
    specs = [
        AppPolicySpec.model_validate({
            "name": f"app{i}", "host": f"app{i}.example.test",
            "allow": [{"groups": ["staff"], "methods": ["GET", "POST"], "paths": ["/"]},
                      {"groups": [f"team{i}"]}],
            "deny": [{"paths": ["/admin/config/backup*"]}],
        })
        for i in range(apps)
    ]
    policy_set = build_policy_set(specs)
    host = f"app{apps // 2}.example.test"
    request = AccessRequest(host=host, method="GET", path="/wiki/page", user="alice",
                            groups=frozenset({"staff"}),
                            source_ip=ipaddress.ip_address("192.0.2.10"), now=NOW)
    assert evaluate(policy_set, request).allowed
    return per_call_ns(lambda: evaluate(policy_set, request))


def build_snapshot(certs: int, revoked: int) -> IdentitySnapshot:
    users = max(1, certs // 10)
    user_records = tuple(
        UserRecord(name=f"user{i}", email=None, enabled=True, groups=("staff",),
                   password_hash=None, created_at=NOW)
        for i in range(users)
    )
    rng = random.Random(7)
    cert_records = []
    for i in range(certs):
        status = CertStatus.REVOKED if i < revoked else CertStatus.ACTIVE
        cert_records.append(CertRecord(
            serial=rng.getrandbits(127), user=f"user{i % users}",
            fingerprint=f"{rng.getrandbits(256):064x}", subject=f"CN=user{i % users}",
            not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=365),
            status=status, issued_at=NOW, pem=""))
    return IdentitySnapshot(users=user_records, certificates=tuple(cert_records),
                            last_event_id=0)


def identity_ns(certs: int, revoked: int) -> tuple[float, float]:
    snapshot = build_snapshot(certs, revoked)
    start = time.perf_counter()
    index = CertificateIndex.from_snapshot(snapshot)
    build_s = time.perf_counter() - start
    active = [c.fingerprint for c in snapshot.certificates if c.status is CertStatus.ACTIVE]
    sample = random.Random(3).sample(active, min(1000, len(active)))
    it = itertools.cycle(sample)
    del snapshot
    return per_call_ns(lambda: index.resolve(next(it), NOW), calls=100_000, rounds=3), build_s


def startup_seconds(workdir: Path, users: int) -> float:
    """Time from `certgate serve` start to its ready line with ``users`` users and certs."""
    from tests.perf.bench import certgate, free_port

    data = workdir / "startup"
    certgate("init", "--data-dir", str(data), "--hostname", "startup.test", "--no-ca-passphrase")
    config = data / "certgate.yaml"
    asyncio.run(_fill_database(config, users))
    exe = shutil.which("certgate", path=str(Path(sys.executable).parent)) or "certgate"
    cmd = [exe, "--config", str(config), "serve", "--listen", f"127.0.0.1:{free_port()}",
           "--admin-listen", f"127.0.0.1:{free_port()}"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "ready" in line:
                return time.perf_counter() - start
        raise RuntimeError("certgate serve exited before it was ready")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


async def _fill_database(config: Path, users: int) -> None:
    """Bulk-load users and one certificate each straight into the store's tables.

    The Store API does one transaction per user, which is right for an admin and
    far too slow to build 100,000 rows for a benchmark.
    """
    from sqlalchemy import insert

    from gateway.config import load_config
    from gateway.store import tables as t
    from gateway.store.db import make_engine, migrate_async, serial_hex

    url = load_config(config).database_url
    await migrate_async(url)
    engine = make_engine(url)
    rng = random.Random(11)
    try:
        async with engine.begin() as conn:
            for start in range(0, users, 10_000):
                batch = range(start, min(start + 10_000, users))
                await conn.execute(insert(t.users), [
                    {"id": i + 1000, "name": f"user{i}", "email": None, "enabled": True,
                     "password_hash": None, "created_at": NOW, "updated_at": NOW}
                    for i in batch])
                await conn.execute(insert(t.certificates), [
                    {"serial": serial_hex(rng.getrandbits(126) | 1 << 126), "user_id": i + 1000,
                     "fingerprint": f"{rng.getrandbits(256):064x}", "subject": f"CN=user{i}",
                     "not_before": NOW - timedelta(days=1), "not_after": NOW + timedelta(days=365),
                     "status": "active", "issued_at": NOW, "key_source": "p12", "pem": ""}
                    for i in batch])
    finally:
        await engine.dispose()


def run_all(workdir: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    small, large = decision_ns(10), decision_ns(10_000)
    out.append({"scenario": "policy decision 10 vs 10,000 apps", "target": "certgate",
                "extra": {"ns_10": small, "ns_10000": large, "ratio": large / small}})
    print(f"  decision: {small:.0f} ns vs {large:.0f} ns", file=sys.stderr, flush=True)
    (s_ns, _), (l_ns, l_build) = identity_ns(10, 0), identity_ns(1_000_000, 100_000)
    out.append({"scenario": "identity lookup 10 vs 1M certs (100k revoked)",
                "target": "certgate",
                "extra": {"ns_10": s_ns, "ns_1M": l_ns, "ratio": l_ns / s_ns,
                          "build_1M_s": l_build}})
    print(f"  identity: {s_ns:.0f} ns vs {l_ns:.0f} ns", file=sys.stderr, flush=True)
    secs = startup_seconds(workdir, 100_000)
    out.append({"scenario": "startup to ready, 100k users + certs", "target": "certgate",
                "extra": {"seconds": secs}})
    print(f"  startup: {secs:.2f} s", file=sys.stderr, flush=True)
    return out
