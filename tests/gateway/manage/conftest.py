"""One data directory (CA, config) per session, made by ``manage.setup`` itself, and a
clock that moves on a minute per reading, so CRLs published back to back never
wait for the wall clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import Config, load_config
from gateway.manage.ca import CaLoader, load_online_ca
from gateway.manage.setup import DataDir, SetupRequest, create_data_dir
from gateway.store.store import Store
from pki.ca import CertificateAuthority

START = datetime.now(UTC).replace(microsecond=0)
HOSTNAME = "gw.example.test"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    request = SetupRequest(data_dir=tmp_path_factory.mktemp("manage") / "gw",
                           hostnames=(HOSTNAME,), pki_base_url=f"http://{HOSTNAME}:8080")
    return asyncio.run(create_data_dir(request, now=START))


@pytest.fixture(scope="session")
def config(data_dir: DataDir) -> Config:
    return load_config(data_dir.config)


@pytest.fixture(scope="session")
def ca(config: Config) -> CertificateAuthority:
    return load_online_ca(config, environ={})


@pytest.fixture
def load_ca(ca: CertificateAuthority) -> CaLoader:
    return lambda: ca


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """Readings a minute apart: every use-case call gets a later ``now``."""
    ticks: Iterator[int] = iter(range(10_000))
    return lambda: START + timedelta(minutes=next(ticks))


@pytest.fixture
async def alice(store: Store) -> Store:
    """The store with an enabled user alice (with an email) and a user bob (without)."""
    await store.add_user("alice", email="alice@example.test", groups=["staff"])
    await store.add_user("bob")
    return store
