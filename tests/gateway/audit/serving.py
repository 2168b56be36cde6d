"""A real gateway (TLS, upstream, run_server) on a database and audit settings a test
chooses: for the no-loss proof and the syslog forward of a running gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from gateway.config import Config, load_config
from gateway.store.db import sqlite_url
from gateway.store.store import Store
from tests.gateway.conftest import Gateway, Template, app_configs, running_server
from tests.gateway.upstreams import Seen, start, upstream_app


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, template: Template, database_url: str | None = None,
                  before_start: Callable[[Config], Awaitable[None]] | None = None,
                  **audit: Any) -> AsyncIterator[Gateway]:
    """The gateway of ``tests.gateway.conftest`` on ``database_url`` (users and
    certificates copied there from the template's SQLite database; default: the
    template's own), with ``audit`` keys added to the config's ``audit`` section;
    ``before_start`` runs with the final config just before the server starts."""
    data_dir, certs = await asyncio.to_thread(template.copy_to, tmp_path)
    database_url = database_url or sqlite_url(data_dir / "certgate.db")
    source = await Store.open(sqlite_url(data_dir / "certgate.db"), migrate=False)
    target = await Store.open(database_url)
    try:
        if not database_url.startswith("sqlite"):
            for user in await source.list_users():
                await target.add_user(user.name, email=user.email, groups=user.groups)
            for cert in await source.list_certificates():
                await target.add_certificate(cert)
    finally:
        await source.close()
        await target.close()
    config_path = data_dir / "certgate.yaml"
    seen = Seen()
    runner, upstream_port = await start(upstream_app(seen))
    cfg = yaml.safe_load(config_path.read_text())
    cfg.update(listen="127.0.0.1:0", admin_listen="127.0.0.1:0", pki_listen="127.0.0.1:0",
               database_url=database_url, apps=app_configs(f"http://127.0.0.1:{upstream_port}"))
    # Checkpoints often, so the proof also covers checkpoints written around the outage.
    cfg["audit"] = {**(cfg.get("audit") or {}), "checkpoint_every": 10, **audit}
    config_path.write_text(yaml.safe_dump(cfg))
    config = load_config(config_path)
    if before_start is not None:
        await before_start(config)
    try:
        async with running_server(config) as (runtime, addresses):
            def port(kind: str) -> int:
                return int(addresses[kind][0].rsplit(":", 1)[1])

            yield Gateway(data_dir, config_path, port("public"), port("admin"), port("pki"),
                          runtime, seen, upstream_port, certs)
    finally:
        await runner.cleanup()
