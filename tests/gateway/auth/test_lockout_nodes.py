"""Lockout across two gateway processes sharing one database: failed sign-ins split over
both nodes lock the person out on both, and `certgate user unlock` lifts it on both.

Two real `certgate serve` processes (same data dir, each its own ports and audit
file and node name, as real deployments must: each node keeps its own audit hash
chain under its name) on SQLite, and on PostgreSQL (the multi-node engine) when
``CERTGATE_TEST_DATABASE_URL`` is set. Nothing waits for time to pass: the sign-in
pages read the failure counters from the shared database.
"""

from __future__ import annotations

import asyncio
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
import pytest
import yaml

from gateway.auth.secretbox import load_secret_box
from gateway.auth.totp import code_at_step, new_secret, secret_context, time_step
from gateway.config import load_config
from gateway.manage import users
from gateway.store.store import Store
from tests.gateway.auth.conftest import PASSWORD
from tests.gateway.conftest import cli, extract_pem
from tests.gateway.nodes import both_started
from tests.gateway.test_server import CERTGATE, Node

HOST = "secure.test"
MAX_FAILURES = 3


@dataclass
class Setup:
    config_a: Path
    config_b: Path
    cert: tuple[Path, Path]
    ca: Path
    secret: str


def _prepare(tmp_path: Path, database_url: str) -> tuple[Path, Path, tuple[Path, Path]]:
    """`init`, one app that asks for the second factor, alice and her certificate."""
    data_dir = tmp_path / "gw"
    cli("init", "--data-dir", str(data_dir), "--hostname", HOST, "--hostname", "127.0.0.1",
        "--no-ca-passphrase")
    config = data_dir / "certgate.yaml"
    cfg = yaml.safe_load(config.read_text())
    cfg.update(node="node-a", listen="127.0.0.1:0", admin_listen="127.0.0.1:0",
               pki_listen="127.0.0.1:0", database_url=database_url,
               auth={"lockout": {"max_failures": MAX_FAILURES, "window": "15m",
                                 "lock_for": "15m"}},
               apps=[{"name": "secure", "host": HOST, "upstream": "http://127.0.0.1:9",
                      "allow": [{"groups": ["staff"]}], "mfa": "required"}])
    config.write_text(yaml.safe_dump(cfg))
    cli("--config", str(config), "user", "add", "alice", "--group", "staff")
    password_file = tmp_path / "p12pw"
    password_file.write_text("test-p12-password\n")
    cli("--config", str(config), "cert", "issue", "alice", "--out", str(tmp_path / "alice.p12"),
        "--p12-password-file", str(password_file))
    # Node B: a copy of the data dir (the same keys; its own spool, audit file and
    # lock, as two nodes must have), the same database, its own name.
    shutil.copytree(data_dir, tmp_path / "gw-b", ignore=shutil.ignore_patterns("certgate.db*"))
    config_b = tmp_path / "gw-b" / "certgate.yaml"
    config_b.write_text(yaml.safe_dump({**cfg, "node": "node-b",
                                        "audit": {"path": "audit/node-b.jsonl"}}))
    return config, config_b, extract_pem(tmp_path / "alice.p12", "test-p12-password",
                                         tmp_path / "alice")


@pytest.fixture
async def setup(tmp_path: Path, database_url: str) -> Setup:
    config_a, config_b, cert = await asyncio.to_thread(_prepare, tmp_path, database_url)
    config = load_config(config_a)
    # An authenticator as `user totp-enroll` stores it, without the ten recovery codes
    # (hashing them is slow on purpose, and this test needs none).
    secret = new_secret()
    box = load_secret_box(config.auth.secrets_key)
    store = await Store.open(config.database_url)
    try:
        await users.set_password(store, "alice", PASSWORD)
        await store.set_totp("alice", box.seal(secret, context=secret_context("alice")),
                             state="active")
    finally:
        await store.close()
    return Setup(config_a, config_b, cert, config.file.parent / "ca" / "root.pem", secret)


@pytest.fixture
async def nodes(setup: Setup, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    async with both_started((setup.config_a, setup.config_b), tmp_path) as pair:
        yield pair


class Browser:
    """Alice's certificate, speaking to one node or the other."""

    def __init__(self, setup: Setup) -> None:
        self.ctx = ssl.create_default_context(cafile=str(setup.ca))
        self.ctx.load_cert_chain(*(str(p) for p in setup.cert))
        self.secret = setup.secret

    async def call(self, node: Node, method: str, *, html: bool = False,
                   data: dict[str, str] | None = None) -> tuple[int, Any]:
        headers = {"Host": HOST, "Accept": "text/html" if html else "application/json"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ctx)) as s, \
                s.request(method, f"https://127.0.0.1:{node.port}/.certgate/login",
                          headers=headers, data=data, server_hostname=HOST,
                          allow_redirects=False) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def page(self, node: Node) -> str:
        status, page = await self.call(node, "GET", html=True)
        assert status == 200
        return str(page)

    async def sign_in(self, node: Node, csrf: str, *, password: str = PASSWORD
                      ) -> tuple[int, Any]:
        code = code_at_step(self.secret, time_step(datetime.now(UTC)))
        return await self.call(node, "POST", data={"csrf": csrf, "next": "/",
                                                   "password": password, "code": code})


async def test_failures_on_two_nodes_lock_both_and_unlock_lifts_both(
        setup: Setup, nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    alice = Browser(setup)
    form = await alice.page(a)
    assert "locked" not in form
    match = re.search(r'name="csrf" value="([^"]+)"', form)
    assert match
    csrf = match.group(1)  # one secrets key: a form of node A is good on node B

    # Failures split over the nodes: A, B, then A reaches the limit.
    for node in (a, b):
        status, body = await alice.sign_in(node, csrf, password="not it at all")
        assert (status, body["error"]) == (401, "login-failed")
    status, body = await alice.sign_in(a, csrf, password="not it at all")
    assert (status, body["error"]) == (429, "locked-out")

    # Locked on both: the pages say so, and the right password and code don't help.
    for node in (a, b):
        assert "Sign-in is locked until" in await alice.page(node)
        status, body = await alice.sign_in(node, csrf)
        assert (status, body["error"]) == (429, "locked-out")

    # The admin unlocks from a third process, by phone, in one command.
    unlock = await asyncio.create_subprocess_exec(
        *CERTGATE, "--config", str(setup.config_a), "user", "unlock", "alice",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(unlock.communicate(), 60)
    assert (unlock.returncode, out.decode().strip()) == (0, "unlocked alice"), err

    for node in (a, b):
        assert "locked" not in await alice.page(node)
    status, _ = await alice.sign_in(b, csrf)
    assert status == 303  # signed in, on node B
    for node in (a, b):
        assert "Traceback" not in "".join(node.log)
    # Each node wrote its own audit chain, under its own name.
    store = await Store.open(load_config(setup.config_a).database_url)
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not all([await store.audit_bounds(name) for name in ("node-a", "node-b")]):
            assert asyncio.get_running_loop().time() < deadline, "a node's records never came"
            await asyncio.sleep(0.1)  # polling for the writers, not waiting for time
    finally:
        await store.close()
