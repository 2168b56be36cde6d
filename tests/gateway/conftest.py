"""A real gateway for end-to-end tests: data dir from `certgate init`, users and
certificates from the CLI, sample upstreams on loopback, the server on port 0.

The CLI work (init, four users, a certificate each) runs once per session into a
template; every test gets its own copy, so a test that revokes or disables starts
from the same clean database as the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from yarl import URL

from gateway.cli.main import main
from gateway.config import Config, load_config
from gateway.runtime import Runtime
from gateway.server import run_server
from gateway.store.records import CertRecord, CertStatus
from gateway.store.store import Store
from pki.ca import CertificateAuthority, build_ca, load_ca
from pki.keys import PrivateKey, fingerprint_sha256, generate_key, key_to_pem
from tests.gateway.upstreams import Seen, start, upstream_app

HOST = "wiki.test"


def app_configs(upstream: str, **extra: Any) -> list[dict[str, Any]]:
    """The apps most tests use; `extra` adds more."""
    apps = [
        {"name": "wiki", "host": "wiki.test", "upstream": upstream, "websockets": True,
         "allow": [{"groups": ["staff"]}], "deny": [{"paths": ["/admin"]}],
         "routes": [{"path": "/small", "max_body_size": "1MiB"}], "ports": [],
         "max_body_size": "512MiB"},
        {"name": "pbx", "host": "pbx.test", "upstream": upstream,
         "allow": [{"groups": ["pbx-admins"], "methods": ["GET"],
                    "source_networks": ["192.0.2.0/24"]}]},
        {"name": "ops", "host": "ops.test", "upstream": upstream,
         "allow": [{"groups": ["staff"], "hours": {"days": "mon-sun", "from": "00:00",
                                                    "to": "00:01", "tz": "Pacific/Kiritimati"}}]},
        {"name": "secure", "host": "secure.test", "upstream": upstream,
         "allow": [{"groups": ["staff"]}], "mfa": "required"},
        {"name": "local", "host": "local.test", "upstream": upstream,
         "allow": [{"groups": ["staff"], "methods": ["GET"], "source_networks": ["127.0.0.0/8"]}]},
        # Apps whose servers read paths their own way (servlet matrix parameters, IIS).
        {"name": "servlet", "host": "servlet.test", "upstream": upstream,
         "path_parameters": "allow", "allow": [{"groups": ["staff"]}],
         "deny": [{"paths": ["/admin"]}]},
        {"name": "iis", "host": "iis.test", "upstream": upstream, "path_case": "insensitive",
         "allow": [{"groups": ["staff"]}], "deny": [{"paths": ["/admin"]}]},
        {"name": "portal", "host": "portal.test", "upstream": upstream,
         "allow": [{"groups": ["staff"], "paths": ["/public"]}]},
    ]
    for app in apps:
        app.update(extra.get(app["name"], {}))
    return apps


@dataclass
class Gateway:
    data_dir: Path
    config_path: Path
    port: int
    admin_port: int
    pki_port: int
    runtime: Runtime
    seen: Seen
    upstream_port: int
    certs: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # user -> (cert, key)
    extra_port: int | None = None  # the port an app listed as FREE_PORT got

    @property
    def ca_pem(self) -> Path:
        return self.data_dir / "ca" / "root.pem"

    def client_ssl(self, user: str | None = "alice", *, files: tuple[Path, Path] | None = None
                   ) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_pem))
        if files is None and user is not None:
            files = self.certs[user]
        if files is not None:
            ctx.load_cert_chain(str(files[0]), str(files[1]))
        return ctx

    def url(self, path: str, *, port: int | None = None) -> str:
        return f"https://127.0.0.1:{port or self.port}{path}"

    async def request(self, method: str, path: str, *, user: str | None = "alice",
                      host: str = HOST, files: tuple[Path, Path] | None = None,
                      port: int | None = None, **kwargs: Any) -> tuple[int, Any, Any]:
        headers = {"Host": host, "Accept": "application/json", **kwargs.pop("headers", {})}
        connector = aiohttp.TCPConnector(ssl=self.client_ssl(user, files=files))
        async with aiohttp.ClientSession(connector=connector) as session, session.request(
                method, URL(self.url(path, port=port), encoded=True), headers=headers,
                server_hostname=host,
                allow_redirects=False, **kwargs) as resp:
            body = await resp.read()
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                data = body
            return resp.status, data, resp.headers

    async def store(self) -> Store:
        return await Store.open(f"sqlite+aiosqlite:///{self.data_dir / 'certgate.db'}",
                                migrate=False)

    async def revoke(self, user: str = "alice") -> int:
        """Revoke ``user``'s first certificate in the database, as the CLI would; its serial."""
        store = await self.store()
        try:
            serial = (await store.list_certificates(user=user))[0].serial
            await store.revoke_certificate(serial, reason="keyCompromise", at=datetime.now(UTC))
            return serial
        finally:
            await store.close()

    def ca(self) -> CertificateAuthority:
        return load_ca(self.data_dir / "ca", None)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 2.0) -> float:
        """Poll until predicate() is truthy; return the seconds it took."""
        loop = asyncio.get_running_loop()
        start_ = loop.time()
        while not await predicate():
            if loop.time() - start_ > timeout:
                raise AssertionError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.05)
        return loop.time() - start_


def cli(*args: str) -> None:
    assert main(list(args)) == 0, args


def extract_pem(p12: Path, password: str, out: Path) -> tuple[Path, Path]:
    loaded = pkcs12.load_pkcs12(p12.read_bytes(), password.encode())
    assert loaded.cert is not None and loaded.key is not None
    cert, key = out.with_suffix(".crt"), out.with_suffix(".key")
    cert.write_bytes(loaded.cert.certificate.public_bytes(Encoding.PEM))
    key.write_bytes(key_to_pem(loaded.key, None))  # type: ignore[arg-type]
    key.chmod(0o600)
    return cert, key


def craft_cert(ca: CertificateAuthority, user: str, *, not_before: datetime,
               not_after: datetime, eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
               signer: PrivateKey | None = None, issuer: x509.Name | None = None
               ) -> tuple[x509.Certificate, PrivateKey]:
    """A certificate outside the CLI's profile (validity, EKU, signer) for refusal tests."""
    key = generate_key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
            .issuer_name(issuer or ca.issuing_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(f"{user}@x.test")]),
                           critical=False)
            .sign(signer or ca.issuing_key, hashes.SHA256()))
    return cert, key


def write_pair(cert: x509.Certificate, key: PrivateKey, out: Path) -> tuple[Path, Path]:
    out.with_suffix(".crt").write_bytes(cert.public_bytes(Encoding.PEM))
    out.with_suffix(".key").write_bytes(key_to_pem(key, None))
    out.with_suffix(".key").chmod(0o600)
    return out.with_suffix(".crt"), out.with_suffix(".key")


async def register(gw: Gateway, cert: x509.Certificate, user: str) -> None:
    store = await gw.store()
    try:
        await store.add_certificate(CertRecord(
            serial=cert.serial_number, user=user, fingerprint=fingerprint_sha256(cert),
            subject=cert.subject.rfc4514_string(), not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc, status=CertStatus.ACTIVE,
            issued_at=datetime.now(UTC), pem=cert.public_bytes(Encoding.PEM).decode()))
    finally:
        await store.close()


def prepare_data_dir(tmp_path: Path) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    """`certgate init`, four users and a certificate each, as an admin would do it."""
    data_dir = tmp_path / "gw"
    names = [HOST, "pbx.test", "ops.test", "secure.test", "local.test", "nope.test", "127.0.0.1",
             "servlet.test", "iis.test", "portal.test"]
    cli("init", "--data-dir", str(data_dir), *[a for n in names for a in ("--hostname", n)],
        "--no-ca-passphrase")
    config_path = data_dir / "certgate.yaml"
    users = {"alice": ["staff"], "bob": ["sales"], "carol": ["staff", "pbx-admins"],
             "dave": ["staff"]}
    pw = tmp_path / "p12pw"
    pw.write_text("test-p12-password\n")
    certs = {}
    for user, groups in users.items():
        cli("--config", str(config_path), "user", "add", user,
            *[a for g in groups for a in ("--group", g)])
        p12 = tmp_path / f"{user}.p12"
        cli("--config", str(config_path), "cert", "issue", user, "--out", str(p12),
            "--p12-password-file", str(pw))
        certs[user] = extract_pem(p12, "test-p12-password", tmp_path / user)
    return data_dir, certs


@dataclass(frozen=True)
class Template:
    """A prepared directory: ``gw/`` (the data dir) and each user's PEM pair beside it."""

    root: Path
    certs: dict[str, tuple[Path, Path]]

    def copy_to(self, dest: Path) -> tuple[Path, dict[str, tuple[Path, Path]]]:
        """Copy into ``dest`` keeping file modes (the server refuses keys that are not
        0600); return the copy's data dir and certificate files."""
        shutil.copytree(self.root, dest, dirs_exist_ok=True)
        certs = {user: (dest / cert.relative_to(self.root), dest / key.relative_to(self.root))
                 for user, (cert, key) in self.certs.items()}
        return dest / "gw", certs


@pytest.fixture(scope="session")
def gateway_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    # Session-scoped and synchronous: the CLI runs its own event loop.
    root = tmp_path_factory.mktemp("gateway-template")
    _, certs = prepare_data_dir(root)
    return Template(root, certs)


@pytest.fixture
async def gateway(tmp_path: Path, request: pytest.FixtureRequest,
                  gateway_template: Template) -> AsyncIterator[Gateway]:
    data_dir, certs = await asyncio.to_thread(gateway_template.copy_to, tmp_path)
    config_path = data_dir / "certgate.yaml"
    seen = Seen()
    runner, upstream_port = await start(upstream_app(seen))
    marker = request.node.get_closest_marker("apps")
    extra = {name: dict(app) for name, app in (marker.kwargs if marker else {}).items()}
    extra_port = None
    for app in extra.values():
        if FREE_PORT in app.get("ports", ()):
            # Picked now, just before the server binds it, not when the module loads.
            extra_port = free_port()
            app["ports"] = [extra_port if p == FREE_PORT else p for p in app["ports"]]
    cfg = yaml.safe_load(config_path.read_text())
    cfg.update(listen="127.0.0.1:0", admin_listen="127.0.0.1:0", pki_listen="127.0.0.1:0",
               apps=app_configs(f"http://127.0.0.1:{upstream_port}", **extra))
    cfg["audit"] = {"path": "audit/audit.jsonl", **(cfg.get("audit") or {})}  # the JSONL copy
    top = request.node.get_closest_marker("config")
    cfg.update(top.kwargs if top else {})
    config_path.write_text(yaml.safe_dump(cfg))
    config = load_config(config_path)

    try:
        async with running_server(config) as (runtime, addresses):
            def port(kind: str) -> int:
                return int(addresses[kind][0].rsplit(":", 1)[1])

            yield Gateway(data_dir, config_path, port("public"), port("admin"), port("pki"),
                          runtime, seen, upstream_port, certs, extra_port)
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running_server(config: Config
                         ) -> AsyncIterator[tuple[Runtime, dict[str, list[str]]]]:
    """``run_server`` in a task, yielded once ready (its start-up error raised as it
    is), stopped and awaited after."""
    ready: asyncio.Future[tuple[Runtime, dict[str, list[str]]]] = \
        asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def on_ready(runtime: Runtime, addresses: dict[str, list[str]]) -> None:
        ready.set_result((runtime, addresses))

    task = asyncio.create_task(run_server(config, on_ready=on_ready, stop=stop))
    done, _ = await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the startup error
    try:
        yield ready.result()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 40)


FREE_PORT = -1  # in an app's "ports": a free port picked at start, as gateway.extra_port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def apps(**kwargs: Any) -> pytest.MarkDecorator:
    """Override app settings for one test: @apps(wiki={"ports": [FREE_PORT]})."""
    return pytest.mark.apps(**kwargs)


__all__ = ["Gateway", "apps", "build_ca", "craft_cert", "register", "timedelta", "write_pair"]
