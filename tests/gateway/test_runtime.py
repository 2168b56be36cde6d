"""Lifecycles of the runtime and the server: what start opens, stop closes, in reverse
order; a start that fails half-way closes exactly what it had opened; the upstream
pools a reload replaced are closed on stop (issue 15: "Unclosed client session")."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway import runtime as runtime_module
from gateway.config import Config, load_config
from gateway.identity.index import CertificateIndex
from gateway.runtime import Runtime
from gateway.server import run_server
from gateway.store.store import Store
from pki.keys import PkiError
from tests.conftest import PG_ENV, _create_pg_database, _drop_pg_database
from tests.gateway.conftest import HOST, app_configs, cli

UNCLOSED = "Unclosed"  # aiohttp's "Unclosed client session" / "Unclosed connector"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A data dir from `certgate init`, on port 0, with apps whose upstream is never asked."""
    data_dir = tmp_path / "gw"
    cli("init", "--data-dir", str(data_dir), "--hostname", HOST, "--no-ca-passphrase")
    path = data_dir / "certgate.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg.update(listen="127.0.0.1:0", admin_listen="127.0.0.1:0", pki_listen="127.0.0.1:0",
               apps=app_configs("http://127.0.0.1:9"))
    path.write_text(yaml.safe_dump(cfg))
    return path


def with_changes(path: Path, **changes: Any) -> Config:
    cfg = yaml.safe_load(path.read_text())
    cfg.update(changes)
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Store]]]:
    """Every Store opened and every Store closed meanwhile (the real ones, spied on)."""
    seen: dict[str, list[Store]] = {"opened": [], "closed": []}
    real_open, real_close = Store.open.__func__, Store.close  # type: ignore[attr-defined]

    async def spy_open(cls: type[Store], *args: Any, **kwargs: Any) -> Store:
        store: Store = await real_open(cls, *args, **kwargs)
        seen["opened"].append(store)
        return store

    async def spy_close(self: Store) -> None:
        seen["closed"].append(self)
        await real_close(self)

    monkeypatch.setattr(Store, "open", classmethod(spy_open))
    monkeypatch.setattr(Store, "close", spy_close)
    yield seen


def unclosed_reports(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Collect garbage now and return what aiohttp said about sessions left open."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    return ([str(w.message) for w in caught if UNCLOSED in str(w.message)]
            + [r.getMessage() for r in caplog.records if UNCLOSED in r.getMessage()])


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def test_the_unclosed_check_can_fail(caplog: pytest.LogCaptureFixture) -> None:
    # Guard against a check that can't fail: a session dropped open is reported.
    session = aiohttp.ClientSession()
    del session
    assert unclosed_reports(caplog)
    caplog.clear()


async def test_stop_after_reloads_closes_every_pool(config_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    runtime = await Runtime.start(load_config(config_path))
    first = runtime.state.pool
    assert runtime.reload(config_path) and runtime.reload(config_path)
    assert len(runtime.retired) == 2 and not first.closed  # kept for requests in flight
    current = runtime.state.pool
    await runtime.stop()
    assert first.closed and current.closed and len(runtime.retired) == 0
    assert other_tasks() == set()
    assert unclosed_reports(caplog) == []
    await runtime.stop()  # a second stop is harmless


async def test_retired_pool_closes_after_its_grace(config_path: Path) -> None:
    runtime = await Runtime.start(load_config(config_path))
    runtime.retired._grace = 0.0
    old = runtime.state.pool
    assert runtime.reload(config_path)
    await asyncio.wait_for(_until(lambda: old.closed and not runtime.retired), 5)
    assert not runtime.state.pool.closed
    await runtime.stop()


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("step", ["index", "crl"])
async def test_runtime_start_failing_after_the_store_opened_closes_it(
        step: str, config_path: Path, stores: dict[str, list[Store]],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # A fault injected into one real step of start (the database is real).
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{step} failed")

    if step == "index":
        monkeypatch.setattr(CertificateIndex, "from_snapshot", fail)
    else:
        monkeypatch.setattr(Store, "latest_crl", fail)
    pools = []
    real_build = runtime_module.build_state

    def spy_build(config: Config) -> Any:
        pools.append(state := real_build(config))
        return state

    monkeypatch.setattr(runtime_module, "build_state", spy_build)
    with pytest.raises(RuntimeError, match=f"{step} failed"):
        await Runtime.start(load_config(config_path))
    assert len(stores["opened"]) == 1 and stores["closed"] == stores["opened"]
    assert [state.pool.closed for state in pools] == [True]
    assert other_tasks() == set()
    assert unclosed_reports(caplog) == []


async def test_stop_closes_in_reverse_order(config_path: Path,
                                            stores: dict[str, list[Store]]) -> None:
    runtime = await Runtime.start(load_config(config_path))
    tasks = {t.get_name(): t for t in other_tasks()}
    assert set(tasks) == {"audit", "follower", "session-activity", "websocket-reauth",
                          "metrics-sampler"}
    await runtime.stop()
    assert all(t.done() for t in tasks.values())
    assert stores["closed"] == stores["opened"] == [runtime.store]
    assert runtime.state.pool.closed


def _occupied() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("failure", ["ocsp-key-missing", "admin-port-taken",
                                     "public-port-taken", "on-ready-raises"])
async def test_start_failing_half_way_closes_what_was_opened(
        failure: str, config_path: Path, stores: dict[str, list[Store]],
        caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(config_path)
    kwargs: dict[str, Any] = {}
    with _occupied() as taken:
        port = taken.getsockname()[1]
        if failure == "ocsp-key-missing":
            (config_path.parent / "ca" / "ocsp-key.pem").unlink()
            expected: type[BaseException] = PkiError
        elif failure == "admin-port-taken":
            config = with_changes(config_path, admin_listen=f"127.0.0.1:{port}")
            expected = OSError
        elif failure == "public-port-taken":
            config = with_changes(config_path, listen=f"127.0.0.1:{port}")
            expected = OSError
        else:
            async def on_ready(runtime: Runtime, addresses: dict[str, list[str]]) -> None:
                raise RuntimeError("on_ready failed")
            kwargs["on_ready"] = on_ready
            expected = RuntimeError
        with pytest.raises(expected) as raised:
            await run_server(config, **kwargs)
    if failure == "ocsp-key-missing":
        assert "ocsp-key.pem does not exist" in str(raised.value)
    assert len(stores["opened"]) == 1 and stores["closed"] == stores["opened"]
    assert other_tasks() == set()
    assert unclosed_reports(caplog) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("listen", [True, False])
async def test_database_listen_false_follows_postgresql_by_polling(
        config_path: Path, listen: bool) -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, name = await _create_pg_database(base)
    try:
        runtime = await Runtime.start(with_changes(config_path, database_url=url,
                                                   database_listen=listen))
        try:
            names = {task.name for task in runtime.tasks}
            assert ("change listener" in names) is listen
            assert "change follower" in names
            tasks = {t.get_name() for t in other_tasks()}
            assert ("listener" in tasks) is listen
        finally:
            await runtime.stop()
    finally:
        await _drop_pg_database(base, name)
