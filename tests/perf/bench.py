"""Side-by-side benchmark: certgate vs nginx (reference mTLS proxy) vs a bare aiohttp proxy.

Not a test: run it with ``make bench`` (or ``.venv/bin/python tests/perf/bench.py``).
Every figure is measured in one run on one machine and reported as ratios, because
this machine is small (2 cores) and shared, so absolute numbers drift.

What runs (all on 127.0.0.1, every process stopped in a ``finally``):
- upstream: nginx serving fixed bodies (``/`` small, ``/big`` 100 MiB, ``/upload`` sink)
  and ``ws_upstream.py`` for WebSocket echo; nginx so the upstream is never the bottleneck
- nginx as the reference mTLS proxy (``ssl_verify_client on``), same CA and server cert
- ``bare_proxy.py``: ~30 lines of aiohttp, the Python floor
- certgate: ``certgate serve`` with 50 apps, identity, policy, JWT assertion and audit on
Load comes from separate processes: ApacheBench (``ab``) for HTTP, ``curl`` for the
streamed download, ``ws_client.py`` for WebSocket round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PY = sys.executable
HOST = "bench.test"
MFA_HOST = "mfa.bench.test"  # an app with mfa: required; the bench user has a session


@dataclass
class Result:
    scenario: str
    target: str
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    note: str = ""
    p90_ms: float | None = None
    requests: int | None = None  # ab's complete requests, when ab ran


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f}s")


class Procs:
    """Every process the harness starts; all are stopped on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], *, log: Path, port: int | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out = log.open("wb")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        self.procs.append(proc)
        if port is not None:
            try:
                wait_port(port)
            except RuntimeError:
                raise RuntimeError(f"{cmd[0]} did not start; see {log}") from None
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)


# --- load generators ------------------------------------------------------------------


def run_ab(url: str, *, client_pem: Path, concurrency: int, seconds: float, keepalive: bool,
           workdir: Path, post_file: Path | None = None) -> Result:
    """ApacheBench with a client certificate; percentiles from its CSV (sub-ms precision)."""
    csv_path = workdir / f"ab-{time.monotonic_ns()}.csv"
    cmd = ["ab", "-q", "-r", "-c", str(concurrency), "-t", str(seconds), "-n", "100000000",
           "-E", str(client_pem), "-H", f"Host: {HOST}", "-e", str(csv_path)]
    if keepalive:
        cmd.append("-k")
    if post_file is not None:
        cmd += ["-p", str(post_file), "-T", "application/octet-stream"]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout
    rps = re.search(r"Requests per second:\s+([\d.]+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    complete = re.search(r"Complete requests:\s+(\d+)", out)
    if rps is None:
        return Result("", "", note=f"ab failed: {(proc.stderr or out).strip()[-200:]}")
    pct: dict[int, float] = {}
    if csv_path.exists():
        with csv_path.open() as fh:
            for row in csv.reader(fh):
                if row and row[0].isdigit():
                    pct[int(row[0])] = float(row[1])
    note = ""
    bad = int(failed.group(1)) if failed else 0
    bad += int(non2xx.group(1)) if non2xx else 0
    if bad:
        note = f"{bad} failed/non-2xx of {complete.group(1) if complete else '?'}"
    return Result("", "", rps=float(rps.group(1)), p50_ms=pct.get(50), p99_ms=pct.get(99),
                  note=note, p90_ms=pct.get(90),
                  requests=int(complete.group(1)) if complete else None)


class RssSampler:
    """Samples a process tree's resident memory while a scenario runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start_kib = self.rss_kib()
        self.peak_kib = self.start_kib
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kib(self) -> int:
        total = 0
        pids = [self.pid]
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            pids += [int(c) for c in children]
        for pid in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kib = max(self.peak_kib, self.rss_kib())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.start_kib) / 1024


def run_download(url: str, *, client_pem: Path, pid: int | None) -> Result:
    cmd = ["curl", "-sk", "--cert", str(client_pem), "-H", f"Host: {HOST}", "-o", "/dev/null",
           "-w", "%{speed_download} %{http_code} %{size_download}", url]
    sampler = RssSampler(pid) if pid else None
    with sampler or contextlib.nullcontext():
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout.split()
    speed, code, size = float(out[0]), out[1], int(out[2])
    extra = {"MiB/s": speed / 2**20, "MiB": size / 2**20}
    if sampler is not None:
        extra["rss_growth_MiB"] = sampler.growth_mib
    note = "" if code == "200" else f"HTTP {code}"
    return Result("", "", rps=speed / 2**20, extra=extra, note=note)


def run_ws(url: str, *, client_pem: Path, ca_pem: Path, seconds: float) -> Result:
    cmd = [PY, str(HERE / "ws_client.py"), url, HOST, str(client_pem), str(ca_pem), "10",
           str(seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        return Result("", "", note=f"ws client failed: {proc.stderr.strip()[-200:]}")
    data = json.loads(proc.stdout)
    return Result("", "", rps=data["rps"], p50_ms=data["p50_ms"], p99_ms=data["p99_ms"])


# --- the systems under test -------------------------------------------------------------


NGINX_CONF = """
worker_processes {workers};
pid {dir}/nginx-{name}.pid;
error_log {dir}/nginx-{name}-error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/nginx-{name}-body;
  proxy_temp_path {dir}/nginx-{name}-proxy;
  fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  {servers}
}}
"""

UPSTREAM_SERVER = """
  server {{
    listen 127.0.0.1:{port} reuseport;
    keepalive_requests 1000000;
    location / {{ return 200 "ok\\n"; }}
    location = /big {{ alias {dir}/big.bin; }}
    # nginx's `return` answers before reading a body, which resets keep-alive
    # uploads; the aiohttp upstream reads and discards it instead.
    location = /upload {{ client_max_body_size 64m; proxy_request_buffering off;
                          proxy_http_version 1.1; proxy_pass http://127.0.0.1:{ws_port}; }}
  }}
"""

PROXY_SERVER = """
  upstream up {{ server 127.0.0.1:{up_port}; keepalive 128; keepalive_requests 1000000; }}
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port} ssl reuseport;
    keepalive_requests 1000000;
    ssl_certificate {cert}; ssl_certificate_key {key};
    ssl_client_certificate {ca}; ssl_verify_client on; ssl_verify_depth 3;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    client_max_body_size 64m;
    location / {{ proxy_pass http://up; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_request_buffering off; }}
    location /ws {{ proxy_pass http://127.0.0.1:{ws_port}; proxy_http_version 1.1;
                   proxy_set_header Upgrade $http_upgrade;
                   proxy_set_header Connection $connection_upgrade; }}
  }}
"""


def nginx_cmd(workdir: Path, name: str, workers: int, servers: str) -> list[str]:
    conf = workdir / f"nginx-{name}.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, dir=workdir, name=name, servers=servers))
    for sub in (f"nginx-{name}-body", f"nginx-{name}-proxy", "fcgi", "uwsgi", "scgi"):
        (workdir / sub).mkdir(exist_ok=True)
    return [shutil.which("nginx") or "nginx", "-c", str(conf), "-p", str(workdir)]


@dataclass
class Pki:
    data_dir: Path
    config: Path
    server_cert: Path
    server_key: Path
    client_ca: Path
    client_pem: Path
    session_cookie: str = ""


def certgate(*args: str, config: Path | None = None) -> str:
    exe = shutil.which("certgate", path=str(Path(PY).parent)) or "certgate"
    cmd = [exe] + (["--config", str(config)] if config else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc.stdout


def prepare_certgate(workdir: Path, *, apps: int, up_port: int, ws_port: int) -> Pki:
    """One certgate data dir; nginx and the bare proxy reuse its CA and server cert."""
    data = workdir / "certgate"
    certgate("init", "--data-dir", str(data), "--hostname", HOST, "--hostname", MFA_HOST,
             "--no-ca-passphrase")
    config = data / "certgate.yaml"
    certgate("user", "add", "bench", "--group", "staff", config=config)
    pw = workdir / "p12-password"
    pw.write_text("bench-p12-password\n")
    pw.chmod(0o600)
    p12 = workdir / "bench.p12"
    certgate("cert", "issue", "bench", "--out", str(p12), "--p12-password-file", str(pw),
             config=config)
    client_pem = workdir / "client.pem"
    subprocess.run(["openssl", "pkcs12", "-in", str(p12), "-nodes", "-passin",
                    f"file:{pw}", "-out", str(client_pem)], check=True, capture_output=True)
    chain = workdir / "client-ca.pem"
    chain.write_bytes((data / "ca" / "root.pem").read_bytes()
                      + (data / "ca" / "issuing.pem").read_bytes())
    cfg = yaml.safe_load(config.read_text())
    bench_app = {
        "name": "bench", "host": HOST, "upstream": f"http://127.0.0.1:{up_port}",
        "allow": [{"groups": ["staff"]}], "max_body_size": "64MiB",
        "routes": [{"path": "/ws", "upstream": f"http://127.0.0.1:{ws_port}",
                    "websockets": True}],
    }
    # 49 more apps so the host table and policy set look like a real company's.
    others = [{"name": f"app{i}", "host": f"app{i}.example.test",
               "upstream": f"http://127.0.0.1:{up_port}",
               "allow": [{"groups": [f"team{i}"], "paths": ["/"]}],
               "deny": [{"paths": ["/admin*"]}]} for i in range(1, apps)]
    mfa_app = {"name": "bench-mfa", "host": MFA_HOST, "upstream": f"http://127.0.0.1:{up_port}",
               "allow": [{"groups": ["staff"]}], "mfa": "required", "mfa_max_age": "12h"}
    cfg["apps"] = [bench_app, mfa_app, *others]
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cookie = asyncio.run(_signed_in_session(config, client_pem))
    return Pki(data, config, data / "tls" / "server.pem", data / "tls" / "server-key.pem",
               chain, client_pem, cookie)


async def _signed_in_session(config_path: Path, client_pem: Path) -> str:
    """A session of the bench user's certificate, as a sign-in would have made it."""
    from cryptography import x509

    from gateway.auth.sessions import new_session_secret
    from gateway.config import load_config
    from gateway.store.records import SessionRecord
    from gateway.store.store import Store
    from pki.keys import fingerprint_sha256

    cert = x509.load_pem_x509_certificate(client_pem.read_bytes())
    value, id_hash = new_session_secret()
    now = datetime.now(UTC)
    store = await Store.open(load_config(config_path).database_url)
    try:
        await store.create_session(SessionRecord(id_hash, "bench", fingerprint_sha256(cert), now,
                                                 now, now, ("mtls", "pwd", "otp")))
    finally:
        await store.close()
    return value


# --- the run ----------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    kind: str  # ab-keepalive | ab-handshake | ab-upload | download | ws
    concurrency: int = 50
    workers: int = 2


SCENARIOS = [
    Scenario("keep-alive c=50, 2 workers", "ab-keepalive", 50, 2),
    Scenario("keep-alive c=50, 1 worker", "ab-keepalive", 50, 1),
    Scenario("keep-alive c=1 (latency), 1 worker", "ab-keepalive", 1, 1),
    Scenario("new handshake per request c=20, 2 workers", "ab-handshake", 20, 2),
    Scenario("100 MiB download, 1 worker", "download", 1, 1),
    Scenario("10 MiB uploads c=4, 1 worker", "ab-upload", 4, 1),
    Scenario("WebSocket echo, 10 conns, 1 worker", "ws", 10, 1),
    # Instructions per keep-alive request under callgrind: deterministic, so it shows
    # a change of a few percent that the noisy req/s figures cannot. Lower is better.
    Scenario("instructions/request (k, callgrind), 1 worker", "instructions", 10, 1),
    # The same to an mfa: required app with a live session (cookie looked up per request).
    Scenario("instructions/request, mfa app + session, 1 worker", "instructions-mfa", 10, 1),
    # certgate twice in the same run: its audit store as it is, then with every batch
    # write delayed (tests/perf/slow_audit_serve.py); requests must not notice.
    Scenario("audit store slowed: keep-alive c=10, 1 worker", "audit-slow", 10, 1),
]


def measure_instructions(procs: Procs, cmd: list[str], port: int, pki: Pki, workdir: Path,
                         requests: int = 2000, *, mfa: bool = False) -> Result:
    """Total instructions the server executes per request, all threads included, counted
    by callgrind only while ``ab -n`` runs (start-up and warm-up are not counted)."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return Result("", "", note="valgrind not installed (apt-get install valgrind)")
    out = workdir / f"callgrind-{port}.out"
    proc = procs.start(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                        f"--callgrind-out-file={out}", *cmd], log=workdir / f"vg-{port}.log")
    try:
        wait_port(port, timeout=600)
        ab = ["ab", "-q", "-k", "-c", "10", "-E", str(pki.client_pem), "-H",
              f"Host: {MFA_HOST if mfa else HOST}"]
        if mfa:
            ab += ["-C", f"__Host-certgate-session={pki.session_cookie}"]
        url = f"https://127.0.0.1:{port}/"
        subprocess.run([*ab, "-n", "300", url], capture_output=True, timeout=600)  # warm-up
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], capture_output=True,
                       timeout=60)
        run = subprocess.run([*ab, "-n", str(requests), url], capture_output=True, text=True,
                             timeout=900)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], capture_output=True,
                       timeout=60)
    finally:
        procs.stop(proc)
    done = re.search(r"Complete requests:\s+(\d+)", run.stdout)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", run.stdout)
    total = 0
    for path in workdir.glob(out.name + "*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    if not done or not total:
        return Result("", "", note=f"callgrind run failed; see {workdir}")
    note = f"{non2xx.group(1)} non-2xx" if non2xx else ""
    return Result("", "", rps=total / int(done.group(1)) / 1000, note=note)


# --- a deliberately slowed audit store ----------------------------------------------------


async def _audit_counts(config: Path, after: dict[str, int] | None = None
                        ) -> tuple[dict[str, int], dict[str, int]]:
    """Per node, the newest audit seq; and, given the heads of an earlier call as
    ``after``, the records written since, by type."""
    from sqlalchemy import func, select

    from gateway.config import load_config
    from gateway.store import tables as t
    from gateway.store.db import make_engine

    engine = make_engine(load_config(config).database_url)
    r = t.audit_records.c
    try:
        async with engine.connect() as conn:
            heads = {row.node: int(row.seq) for row in await conn.execute(
                select(r.node, func.max(r.seq).label("seq")).group_by(r.node))}
            types: dict[str, int] = {}
            for node in heads if after is not None else ():
                for row in await conn.execute(
                        select(r.type, func.count().label("n"))
                        .where(r.node == node, r.seq > after.get(node, 0)).group_by(r.type)):
                    types[row.type] = types.get(row.type, 0) + int(row.n)
    finally:
        await engine.dispose()
    return heads, types


class QueueSampler:
    """Polls certgate's ``/metrics`` for the audit queue while a scenario runs."""

    def __init__(self, admin_port: int) -> None:
        self.url = f"http://127.0.0.1:{admin_port}/metrics"
        self.peak_queue = 0.0
        self.peak_spooled = 0.0
        self.failing = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> dict[str, float]:
        import urllib.request

        with urllib.request.urlopen(self.url, timeout=2) as resp:
            text = resp.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in ("certgate_audit_queue_records", "certgate_audit_spooled_records",
                        "certgate_audit_failing"):
                values[name] = float(value)
        return values

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(OSError, ValueError):
                v = self.read()
                self.samples += 1
                self.peak_queue = max(self.peak_queue, v.get("certgate_audit_queue_records", 0))
                self.peak_spooled = max(self.peak_spooled,
                                        v.get("certgate_audit_spooled_records", 0))
                self.failing = max(self.failing, v.get("certgate_audit_failing", 0))

    def __enter__(self) -> QueueSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _x(a: float | None, b: float | None) -> float:
    return a / b if a and b else float("nan")


def measure_audit_slow(procs: Procs, sc: Scenario, pki: Pki, workdir: Path, seconds: float,
                       delay: float) -> list[Result]:
    """certgate with its audit store as it is, then with every batch write ``delay``
    seconds slower, one after the other in this run: keep-alive latency of both, the
    audit queue while loaded, and after each (graceful stop, so the queue drains) the
    ``access`` records written against the requests ab completed."""
    exe = shutil.which("certgate", path=str(Path(PY).parent)) or "certgate"
    results: list[Result] = []
    for target, launcher in (("certgate", [exe]),
                             (f"cg audit+{delay * 1000:.0f}ms",
                              [PY, str(HERE / "slow_audit_serve.py"), str(delay)])):
        port, admin = free_port(), free_port()
        cmd = [*launcher, "--config", str(pki.config), "serve", "--listen",
               f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
               "--workers", str(sc.workers)]
        heads, _ = asyncio.run(_audit_counts(pki.config))
        proc = procs.start(cmd, log=workdir / f"audit-slow-{port}.log", port=port)
        try:
            wait_port(admin)
            with QueueSampler(admin) as sampler:
                res = run_ab(f"https://127.0.0.1:{port}/", client_pem=pki.client_pem,
                             concurrency=sc.concurrency, seconds=seconds, keepalive=True,
                             workdir=workdir)
                left = sampler.read().get("certgate_audit_queue_records", -1)
        finally:
            procs.stop(proc)  # SIGTERM: the writer drains its queue before the exit
        _, types = asyncio.run(_audit_counts(pki.config, heads))
        written = types.get("access", 0)
        res.scenario, res.target = sc.name, target
        res.extra = {"p90_ms": res.p90_ms or float("nan"), "requests": float(res.requests or 0),
                     "queue_peak": sampler.peak_queue,
                     "queue_at_end": left,
                     "spooled_peak": sampler.peak_spooled, "failing": sampler.failing,
                     "access_records": written}
        if res.requests is not None and written < res.requests:
            res.note = (res.note + f" LOST {res.requests - written} audit records").strip()
        if results:  # the slowed run against the normal one, from this run
            base = results[0]
            res.extra.update({"p50_x": _x(res.p50_ms, base.p50_ms),
                              "p90_x": _x(res.p90_ms, base.p90_ms),
                              "p99_x": _x(res.p99_ms, base.p99_ms),
                              "rps_x": _x(res.rps, base.rps)})
        results.append(res)
    verify = subprocess.run([exe, "--config", str(pki.config), "audit", "verify"],
                            capture_output=True, text=True, timeout=300)
    results[-1].note = (results[-1].note + (" chain verifies" if verify.returncode == 0 else
                        f" audit verify FAILED: {verify.stdout.strip()[-200:]}")).strip()
    return results


def measure(sc: Scenario, target: str, port: int, pid: int | None, pki: Pki, workdir: Path,
            seconds: float) -> Result:
    base = f"https://127.0.0.1:{port}"
    if sc.kind == "ab-keepalive":
        r = run_ab(base + "/", client_pem=pki.client_pem, concurrency=sc.concurrency,
                   seconds=seconds, keepalive=True, workdir=workdir)
    elif sc.kind == "ab-handshake":
        r = run_ab(base + "/", client_pem=pki.client_pem, concurrency=sc.concurrency,
                   seconds=seconds, keepalive=False, workdir=workdir)
    elif sc.kind == "ab-upload":
        r = run_ab(base + "/upload", client_pem=pki.client_pem, concurrency=sc.concurrency,
                   seconds=seconds, keepalive=True, workdir=workdir,
                   post_file=workdir / "upload.bin")
    elif sc.kind == "download":
        r = run_download(base + "/big", client_pem=pki.client_pem, pid=pid)
    else:
        r = run_ws(f"wss://127.0.0.1:{port}/ws", client_pem=pki.client_pem,
                   ca_pem=pki.client_ca, seconds=seconds)
    r.scenario, r.target = sc.name, target
    return r


def run_scenarios(workdir: Path, seconds: float, only: set[str] | None,
                  apps: int, audit_delay: float = 0.2) -> list[Result]:
    procs = Procs()
    results: list[Result] = []
    try:
        up_port, ws_port = free_port(), free_port()
        # nginx workers run as an unprivileged user: let them read the bodies.
        workdir.chmod(0o755)
        with (workdir / "big.bin").open("wb") as fh:
            fh.truncate(100 * 2**20)
        (workdir / "big.bin").chmod(0o644)
        (workdir / "upload.bin").write_bytes(os.urandom(10 * 2**20))
        procs.start(nginx_cmd(workdir, "upstream", 2,
                              UPSTREAM_SERVER.format(port=up_port, dir=workdir,
                                                     ws_port=ws_port)),
                    log=workdir / "upstream.log", port=up_port)
        procs.start([PY, str(HERE / "ws_upstream.py"), str(ws_port)],
                    log=workdir / "ws-upstream.log", port=ws_port)
        pki = prepare_certgate(workdir, apps=apps, up_port=up_port, ws_port=ws_port)
        for sc in SCENARIOS:
            if only and sc.kind not in only and sc.name not in only:
                continue
            if sc.kind == "audit-slow":
                for res in measure_audit_slow(procs, sc, pki, workdir, seconds, audit_delay):
                    results.append(res)
                    print(f"  {sc.name:45s} {res.target:9s} {fmt(res.rps)} {fmt(res.p50_ms)} "
                          f"{fmt(res.p90_ms)} {fmt(res.p99_ms)} {res.extra} {res.note}",
                          file=sys.stderr, flush=True)
                continue
            for target in ("nginx", "bare", "certgate"):
                if target == "nginx" and sc.kind.startswith("instructions"):
                    results.append(Result(sc.name, target, note="not counted (C, no Python)"))
                    continue
                if target == "bare" and sc.kind == "ws":
                    results.append(Result(sc.name, target,
                                          note="the ~30-line bare proxy has no WebSocket pump"))
                    continue
                port = free_port()
                if target == "nginx":
                    if shutil.which("nginx") is None:
                        results.append(Result(sc.name, target, note="nginx not installed"))
                        continue
                    servers = PROXY_SERVER.format(
                        up_port=up_port, ws_port=ws_port, port=port, cert=pki.server_cert,
                        key=pki.server_key, ca=pki.client_ca)
                    cmd = nginx_cmd(workdir, f"proxy{port}", sc.workers, servers)
                elif target == "bare":
                    cmd = [PY, str(HERE / "bare_proxy.py"), str(port), f"http://127.0.0.1:{up_port}",
                           str(pki.server_cert), str(pki.server_key), str(pki.client_ca),
                           str(sc.workers)]
                else:
                    exe = shutil.which("certgate", path=str(Path(PY).parent)) or "certgate"
                    cmd = [exe, "--config", str(pki.config), "serve",
                           "--listen", f"127.0.0.1:{port}",
                           "--admin-listen", f"127.0.0.1:{free_port()}",
                           "--workers", str(sc.workers)]
                if sc.kind.startswith("instructions"):
                    res = measure_instructions(procs, cmd, port, pki, workdir,
                                               mfa=sc.kind == "instructions-mfa")
                    res.scenario, res.target = sc.name, target
                else:
                    proc = procs.start(cmd, log=workdir / f"{target}-{port}.log", port=port)
                    try:
                        time.sleep(0.3)  # let every worker of a multi-process server bind
                        res = measure(sc, target, port, proc.pid, pki, workdir, seconds)
                    finally:
                        procs.stop(proc)
                results.append(res)
                print(f"  {sc.name:45s} {target:9s} "
                      f"{fmt(res.rps)} {fmt(res.p50_ms)} {fmt(res.p99_ms)} {res.note}",
                      file=sys.stderr, flush=True)
    finally:
        procs.stop_all()
    return results


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}"


def table(results: list[Result]) -> str:
    lines = [
        f"{'scenario':45s} {'target':9s} {'rate':>12s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'cg/nginx':>8s} {'cg/bare':>8s}  note",
    ]
    by: dict[tuple[str, str], Result] = {(r.scenario, r.target): r for r in results}
    for sc in dict.fromkeys(r.scenario for r in results):
        cg, ng, bare = (by.get((sc, t)) for t in ("certgate", "nginx", "bare"))
        others = [r for r in results if r.scenario == sc
                  and r.target not in ("certgate", "nginx", "bare")]
        for r in (ng, bare, cg, *others):
            if r is None:
                continue
            extra = " ".join(f"{k}={v:.2f}" if k.endswith("_x") else f"{k}={v:.1f}"
                             for k, v in r.extra.items())
            rat_n = ratio(cg.rps, ng.rps) if (r is cg and cg and ng) else ""
            rat_b = ratio(cg.rps, bare.rps) if (r is cg and cg and bare) else ""
            lines.append(f"{sc:45s} {r.target:9s} {fmt(r.rps):>12s} {fmt(r.p50_ms):>8s} "
                         f"{fmt(r.p99_ms):>8s} {rat_n:>8s} {rat_b:>8s}  {extra} {r.note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per measurement")
    parser.add_argument("--quick", action="store_true", help="2 s per measurement")
    parser.add_argument("--only", action="append",
                        help="scenario kind or name (ab-keepalive, ab-handshake, ab-upload, "
                             "download, ws, instructions, audit-slow, micro); repeatable")
    parser.add_argument("--apps", type=int, default=50, help="apps in certgate's config")
    parser.add_argument("--audit-delay", type=float, default=0.2,
                        help="seconds each audit batch write waits in the audit-slow "
                             "scenario (default 0.2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--skip", action="append", default=[],
                        help="scenario kind to leave out (e.g. instructions); repeatable")
    args = parser.parse_args(argv)
    for tool in ("ab", "curl", "openssl"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is required (apt-get install apache2-utils curl openssl)",
                  file=sys.stderr)
            return 1
    if shutil.which("nginx") is None:
        print("bench: nginx is not installed (apt-get install nginx-light); "
              "its column stays empty", file=sys.stderr)
    seconds = 2.0 if args.quick else args.seconds
    only = set(args.only) if args.only else None
    if args.skip:
        only = (only or {sc.kind for sc in SCENARIOS} | {"micro"}) - set(args.skip)
    workdir = Path(tempfile.mkdtemp(prefix="certgate-bench-"))
    results: list[Result] = []
    try:
        if only is None or only - {"micro"}:
            results += run_scenarios(workdir, seconds, only, args.apps, args.audit_delay)
        if only is None or "micro" in only:
            from tests.perf import micro

            results += [Result(**r) for r in micro.run_all(workdir)]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"bench: work directory kept at {workdir}", file=sys.stderr)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
