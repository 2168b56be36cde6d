"""`certgate serve` as a real process: memory under big streams, reload, drain, OCSP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.gateway.conftest import HOST, app_configs, prepare_data_dir
from tests.gateway.upstreams import MiB, Seen, start, upstream_app

CERTGATE = [sys.executable, "-m", "gateway.cli.main"]


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    config: Path
    port: int
    pki_port: int
    data_dir: Path
    certs: dict[str, tuple[Path, Path]]
    seen: Seen
    log: list[str]
    reader: asyncio.Task[None]
    arrived: dict[str, asyncio.Event]  # upstream path -> set when a request for it arrives

    def ssl(self, user: str = "alice") -> object:
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.data_dir / "ca" / "root.pem"))
        ctx.load_cert_chain(*[str(p) for p in self.certs[user]])
        return ctx

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    async def wait_log(self, pattern: str, timeout: float = 10.0) -> str:
        async def scan() -> str:
            while True:
                for line in self.log:
                    if re.search(pattern, line):
                        return line
                await asyncio.sleep(0.05)
        return await asyncio.wait_for(scan(), timeout)


async def _reader(stream: asyncio.StreamReader, sink: list[str]) -> None:
    while line := await stream.readline():
        sink.append(line.decode(errors="replace"))


def _arrivals(seen: Seen, arrived: dict[str, asyncio.Event]) -> web.Application:
    """The sample upstream, telling the test when a request has reached it."""
    @web.middleware
    async def note(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        arrived.setdefault(request.path, asyncio.Event()).set()
        return await handler(request)

    app = upstream_app(seen)
    app.middlewares.append(note)
    return app


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    data_dir, certs = await asyncio.to_thread(prepare_data_dir, tmp_path)
    arrived: dict[str, asyncio.Event] = {"/slow": asyncio.Event()}
    seen = Seen()
    runner, up_port = await start(_arrivals(seen, arrived))
    config = data_dir / "certgate.yaml"
    cfg = yaml.safe_load(config.read_text())
    cfg.update(listen="127.0.0.1:0", admin_listen="127.0.0.1:0", pki_listen="127.0.0.1:0",
               apps=app_configs(f"http://127.0.0.1:{up_port}"))
    config.write_text(yaml.safe_dump(cfg))
    proc = await asyncio.create_subprocess_exec(
        *CERTGATE, "--config", str(config), "serve", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=str(tmp_path))
    log: list[str] = []
    assert proc.stdout is not None
    reader = asyncio.create_task(_reader(proc.stdout, log))
    served = Served(proc, config, 0, 0, data_dir, certs, seen, log, reader, arrived)
    try:
        line = await served.wait_log(r"certgate ready", timeout=30)
        served.port = int(re.search(r"public https://127.0.0.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        served.pki_port = int(re.search(r"pki http://127.0.0.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        yield served
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 40)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        reader.cancel()
        await runner.cleanup()


async def _get(served: Served, path: str, *, user: str = "alice", host: str = HOST,
               session: aiohttp.ClientSession | None = None) -> tuple[int, str]:
    own = session is None
    session = session or aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        ssl=served.ssl(user)))  # type: ignore[arg-type]
    try:
        async with session.get(f"https://127.0.0.1:{served.port}{path}",
                               headers={"Host": host, "Accept": "application/json"},
                               server_hostname=host) as resp:
            return resp.status, await resp.text()
    finally:
        if own:
            await session.close()


@pytest.mark.slow
async def test_256_mib_download_and_upload_keep_memory_flat(served: Served) -> None:
    size = 256
    before = served.rss_kib()
    peak = before
    connector = aiohttp.TCPConnector(ssl=served.ssl())  # type: ignore[arg-type]
    async with aiohttp.ClientSession(connector=connector) as session:
        received = 0
        async with session.get(f"https://127.0.0.1:{served.port}/big?mib={size}",
                               headers={"Host": HOST}, server_hostname=HOST) as resp:
            assert resp.status == 200
            async for chunk in resp.content.iter_chunked(MiB):
                received += len(chunk)
                if received % (16 * MiB) < len(chunk):
                    peak = max(peak, served.rss_kib())
        assert received == size * MiB

        async def body() -> AsyncIterator[bytes]:
            nonlocal peak
            chunk = b"\x5a" * MiB
            for i in range(size):
                if i % 16 == 0:
                    peak = max(peak, served.rss_kib())
                yield chunk

        async with session.post(f"https://127.0.0.1:{served.port}/upload", data=body(),
                                headers={"Host": HOST}, server_hostname=HOST) as resp:
            assert resp.status == 200
            assert (await resp.json())["bytes"] == size * MiB
    peak = max(peak, served.rss_kib())
    growth_mib = (peak - before) / 1024
    assert growth_mib < 50, f"gateway RSS grew by {growth_mib:.1f} MiB"


async def test_bad_reload_keeps_serving_the_old_policy(served: Served) -> None:
    assert (await _get(served, "/"))[0] == 200
    text = served.config.read_text()
    broken = text.replace("groups:\n    - staff", "groups:\n    - staff\n    bogus_key: 1", 1)
    assert broken != text
    served.config.write_text(broken)
    served.proc.send_signal(signal.SIGHUP)
    line = await served.wait_log(r"config reload REFUSED")
    assert "REFUSED" in line
    await served.wait_log(r"bogus_key")
    assert (await _get(served, "/"))[0] == 200  # still serving with the old policy
    assert (await _get(served, "/", user="bob"))[0] == 403
    # a valid change is applied: let bob's group in
    served.config.write_text(text.replace("- staff", "- sales", 1))
    served.proc.send_signal(signal.SIGHUP)
    await served.wait_log(r"config reloaded")
    assert (await _get(served, "/", user="bob"))[0] == 200
    assert (await _get(served, "/", user="alice"))[0] == 403


async def test_sigterm_drains_requests_in_flight(served: Served) -> None:
    task = asyncio.create_task(_get(served, "/slow"))
    await asyncio.wait_for(served.arrived["/slow"].wait(), 10)  # in flight upstream now
    served.proc.send_signal(signal.SIGTERM)
    assert await task == (200, "finished")
    assert await asyncio.wait_for(served.proc.wait(), 30) == 0


async def test_stop_after_reload_leaves_no_unclosed_session(served: Served) -> None:
    # Issue 15: the pools a reload replaced were left for 300 s and never closed by
    # a stop, so stopping soon after a SIGHUP logged "Unclosed client session".
    for _ in range(2):
        seen = len([line for line in served.log if "config reloaded" in line])
        served.proc.send_signal(signal.SIGHUP)
        await asyncio.wait_for(_count(served, "config reloaded", seen + 1), 10)
    assert (await _get(served, "/"))[0] == 200
    served.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.proc.wait(), 30) == 0
    await asyncio.wait_for(served.reader, 10)  # every line, up to end of output
    output = "".join(served.log)
    assert "stopping: draining" in output
    assert "Unclosed" not in output and "Traceback" not in output, output
    # Not a terminal: operational logs are one JSON object per line (issue 12).
    logged = [json.loads(line) for line in served.log if not line.startswith("certgate ready")]
    assert logged and all({"time", "level", "logger", "message", "pid"} <= set(r)
                          for r in logged)
    reloads = [r for r in logged if r["message"].startswith("config reloaded")]
    assert len(reloads) == 2 and reloads[0]["level"] == "warning"
    assert reloads[0]["time"].endswith("Z") and reloads[0]["logger"] == "certgate"


async def _count(served: Served, text: str, n: int) -> None:
    while len([line for line in served.log if text in line]) < n:
        await asyncio.sleep(0.05)


async def test_openssl_ocsp_client_sees_good_then_revoked(served: Served, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    ca = served.data_dir / "ca"
    leaf = served.certs["dave"][0]

    async def ask() -> str:
        proc = await asyncio.create_subprocess_exec(
            "openssl", "ocsp", "-url", f"http://127.0.0.1:{served.pki_port}/ocsp", "-issuer",
            str(ca / "issuing.pem"), "-cert", str(leaf), "-CAfile", str(ca / "root.pem"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = await proc.communicate()
        return out.decode()

    first = await ask()
    assert "Response verify OK" in first and f"{leaf}: good" in first
    serial = subprocess.run(["openssl", "x509", "-in", str(leaf), "-noout", "-serial"],
                            capture_output=True, text=True).stdout.split("=")[1].strip()
    env = {**os.environ, "CERTGATE_CONFIG": str(served.config)}
    proc = await asyncio.create_subprocess_exec(*CERTGATE, "cert", "revoke", serial, "--reason",
                                                "keyCompromise", env=env,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err

    async def revoked() -> bool:
        out = await ask()
        return f"{leaf}: revoked" in out and "Reason: keyCompromise" in out

    for _ in range(20):
        if await revoked():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(await ask())
    # The revocation and the re-signed CRL are two commits, seen by the change feed
    # in one poll or in the next: the served CRL must list the serial within a second.
    from cryptography import x509

    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            async with session.get(f"http://127.0.0.1:{served.pki_port}/crl") as resp:
                assert resp.status == 200 and resp.content_type == "application/pkix-crl"
                crl = x509.load_der_x509_crl(await resp.read())
            if crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the served CRL does not list the revoked serial after 1 s")


async def test_world_readable_key_is_refused_at_start(tmp_path: Path) -> None:
    data_dir, _ = await asyncio.to_thread(prepare_data_dir, tmp_path)
    (data_dir / "tls" / "server-key.pem").chmod(0o644)
    proc = await asyncio.create_subprocess_exec(
        *CERTGATE, "--config", str(data_dir / "certgate.yaml"), "serve", "--listen",
        "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "server-key.pem is readable by group or others (mode 0644); run chmod 600" in \
        err.decode()
    assert "Traceback" not in err.decode()
