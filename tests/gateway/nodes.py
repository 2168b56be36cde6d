"""Two `certgate serve` processes on one database, for the multi-node proofs.

``prepare`` runs `certgate init` and the CLI (users, a certificate each) against
the given database; node B gets a copy of node A's data directory (same keys,
its own spool and audit file) and its own ``node`` name. ``Client`` speaks to
either node with one user's certificate, over one keep-alive connection when
asked. Used by ``test_nodes.py``, ``test_nodes_outage.py`` and
``tests/perf/revoke_latency.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from gateway.auth.secretbox import load_secret_box
from gateway.auth.sessions import COOKIE
from gateway.auth.totp import code_at_step, new_secret, secret_context, time_step
from gateway.config import load_config
from gateway.manage import users as manage_users
from gateway.store.store import Store
from tests.gateway.conftest import cli, extract_pem
from tests.gateway.test_server import CERTGATE, Node, serve_node

WIKI, SECURE = "wiki.test", "secure.test"
PASSWORD = "correct horse battery"
MAX_FAILURES = 3


@dataclass
class Cluster:
    root: Path
    database_url: str
    configs: tuple[Path, Path]  # node A's, node B's
    certs: dict[str, tuple[Path, Path]]
    ca: Path
    secrets: dict[str, str]  # user -> TOTP secret

    def client(self, user: str) -> Client:
        return Client(self, user)


def prepare(root: Path, database_url: str, upstream: str, users: dict[str, list[str]],
            **config: Any) -> tuple[tuple[Path, Path], dict[str, tuple[Path, Path]]]:
    """`init`, the apps, ``users`` with a certificate each; node B's copy. Synchronous
    (the CLI runs its own event loop): call it in a thread."""
    data_dir = root / "a"
    cli("init", "--data-dir", str(data_dir), "--hostname", WIKI, "--hostname", SECURE,
        "--hostname", "127.0.0.1", "--no-ca-passphrase")
    path_a = data_dir / "certgate.yaml"
    cfg = yaml.safe_load(path_a.read_text())
    cfg.update(listen="127.0.0.1:0", admin_listen="127.0.0.1:0", pki_listen="127.0.0.1:0",
               database_url=database_url, node="node-a",
               auth={"lockout": {"max_failures": MAX_FAILURES, "window": "15m",
                                 "lock_for": "15m"}},
               audit={"path": "audit/audit.jsonl"},
               apps=[{"name": "wiki", "host": WIKI, "upstream": upstream, "websockets": True,
                      "allow": [{"groups": ["staff"]}]},
                     {"name": "secure", "host": SECURE, "upstream": upstream,
                      "allow": [{"groups": ["staff"]}], "mfa": "required"}], **config)
    path_a.write_text(yaml.safe_dump(cfg))
    pw = root / "p12pw"
    pw.write_text("test-p12-password\n")
    certs = {}
    for user, groups in users.items():
        cli("--config", str(path_a), "user", "add", user,
            *[a for g in groups for a in ("--group", g)])
        cli("--config", str(path_a), "cert", "issue", user, "--out", str(root / f"{user}.p12"),
            "--p12-password-file", str(pw))
        certs[user] = extract_pem(root / f"{user}.p12", "test-p12-password", root / user)
    shutil.copytree(data_dir, root / "b")  # same keys; its own spool, audit file, name
    path_b = root / "b" / "certgate.yaml"
    path_b.write_text(yaml.safe_dump({**cfg, "node": "node-b"}))
    return (path_a, path_b), certs


async def second_factor(config: Path, users: list[str]) -> dict[str, str]:
    """A password and an active authenticator for each of ``users`` (as `user
    totp-enroll` stores it, without the recovery codes, slow to hash on purpose)."""
    loaded = load_config(config)
    box = load_secret_box(loaded.auth.secrets_key)
    store = await Store.open(loaded.database_url)
    secrets = {}
    try:
        for user in users:
            secrets[user] = new_secret()
            await manage_users.set_password(store, user, PASSWORD)
            await store.set_totp(user, box.seal(secrets[user], context=secret_context(user)),
                                 state="active")
    finally:
        await store.close()
    return secrets


@contextlib.asynccontextmanager
async def two_nodes(cluster: Cluster) -> AsyncIterator[tuple[Node, Node]]:
    """Both nodes of ``cluster`` started at once (see ``both_started``)."""
    async with both_started(cluster.configs) as nodes:
        yield nodes


@contextlib.asynccontextmanager
async def both_started(configs: tuple[Path, Path], cwd: Path | None = None
                       ) -> AsyncIterator[tuple[Node, Node]]:
    """A node for each config (run in ``cwd``, else beside its config), started at once;
    each one that started is stopped by its PID on the way out, whether or not the
    other did."""
    async with contextlib.AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(stack.enter_async_context(serve_node(c, cwd or c.parent)) for c in configs),
            return_exceptions=True)
        for result in started:
            if isinstance(result, BaseException):
                raise result
        a, b = started
        assert isinstance(a, Node) and isinstance(b, Node)
        yield a, b


async def run_cli(config: Path, *args: str) -> str:
    """`certgate --config CONFIG ARGS` as its own process; its output."""
    proc = await asyncio.create_subprocess_exec(
        *CERTGATE, "--config", str(config), *args, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (args, err.decode())
    return out.decode()


def admin_port(node: Node) -> int:
    for line in node.log:
        if found := re.search(r"admin http://127.0.0.1:(\d+)", line):
            return int(found.group(1))
    raise AssertionError("no admin listener in the ready line")


async def readyz(node: Node) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, \
            s.get(f"http://127.0.0.1:{admin_port(node)}/readyz") as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


class Client:
    """One user's certificate; ``keep_alive`` gives one connection per node."""

    def __init__(self, cluster: Cluster, user: str) -> None:
        self.cluster = cluster
        self.user = user
        self.ctx = ssl.create_default_context(cafile=str(cluster.ca))
        self.ctx.load_cert_chain(*(str(p) for p in cluster.certs[user]))
        self.connections = 0

    def session(self) -> aiohttp.ClientSession:
        """A client session over one connection (limit 1), counting the connections made."""
        trace = aiohttp.TraceConfig()

        async def made(*_: object) -> None:
            self.connections += 1

        trace.on_connection_create_end.append(made)
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ctx, limit=1),
                                     trace_configs=[trace])

    async def get(self, node: Node, path: str = "/", *, host: str = WIKI,
                  cookie: str | None = None, session: aiohttp.ClientSession | None = None,
                  html: bool = False) -> tuple[int, str]:
        headers = {"Host": host, "Accept": "text/html" if html else "application/json"}
        if cookie:
            headers["Cookie"] = f"{COOKIE}={cookie}"
        async with contextlib.AsyncExitStack() as stack:
            s = session or await stack.enter_async_context(self.session())
            async with s.get(f"https://127.0.0.1:{node.port}{path}", headers=headers,
                             server_hostname=host, allow_redirects=False) as resp:
                return resp.status, await resp.text()
        raise AssertionError("unreachable")

    async def csrf(self, node: Node) -> str:
        status, page = await self.get(node, "/.certgate/login", host=SECURE, html=True)
        assert status == 200, page
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, page
        return found.group(1)

    def code(self) -> str:
        return code_at_step(self.cluster.secrets[self.user], time_step(datetime.now(UTC)))

    async def sign_in(self, node: Node, *, password: str = PASSWORD, code: str | None = None,
                      csrf: str | None = None) -> tuple[int, str, str | None]:
        """POST the sign-in form; (status, body, the session cookie if one was set)."""
        data = {"csrf": csrf or await self.csrf(node), "next": "/", "password": password,
                "code": code or self.code()}
        async with self.session() as s, s.post(
                f"https://127.0.0.1:{node.port}/.certgate/login", data=data,
                headers={"Host": SECURE, "Accept": "application/json"},
                server_hostname=SECURE, allow_redirects=False) as resp:
            cookie = None
            for value in resp.headers.getall("Set-Cookie", []):
                if value.startswith(f"{COOKIE}="):
                    cookie = value.split(";", 1)[0].split("=", 1)[1] or None
            return resp.status, await resp.text(), cookie


async def within(seconds: float, condition: Any, every: float = 0.01) -> float:
    """Await ``condition()`` until it is true; the seconds it took (fails after ``seconds``)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await condition():
        if loop.time() - start > seconds:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(every)
    return loop.time() - start
