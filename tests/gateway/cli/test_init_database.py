"""`certgate init --database-url`: a new install on PostgreSQL from the start, a second
node that joins with a copy of the first one's directory, and a database that already
holds an install refused with nothing made."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.config import load_config
from gateway.manage.database import point_config
from gateway.store import tables as t
from gateway.store.db import make_engine
from tests.gateway.cli.conftest import Certgate


def init_args(data_dir: Path, url: str, *extra: str) -> list[str]:
    return ["init", "--data-dir", str(data_dir), "--hostname", "gw.example.test",
            "--no-ca-passphrase", "--database-url", url, *extra]


def counts(url: str) -> dict[str, int]:
    async def go() -> dict[str, int]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return {table.name: (await conn.execute(
                    select(func.count()).select_from(table))).scalar_one()
                    for table in t.metadata.sorted_tables}
        finally:
            await engine.dispose()
    return asyncio.run(go())


def test_init_on_postgresql_and_a_second_node_joins(tmp_path: Path, pg_url: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    first = Certgate(tmp_path / "gw1", capsys)
    made = first(*init_args(first.data_dir, pg_url, "--node", "gw1"), config=False)
    assert made.code == 0, made.err
    config = load_config(first.config)
    assert (config.database_url, config.node) == (pg_url, "gw1")
    assert not (first.data_dir / "certgate.db").exists()  # no SQLite file on the side
    assert "postgresql+asyncpg://" in made.out
    assert counts(pg_url)["crls"] == 1  # the first CRL went to PostgreSQL
    first.ok("user", "add", "alice", "--group", "staff")

    # The second node: the same directory (CA, keys, config), its own node name.
    second = Certgate(tmp_path / "gw2", capsys)
    shutil.copytree(first.data_dir, second.data_dir)
    text = second.config.read_text().replace('node: "gw1"', 'node: "gw2"')
    second.config.write_text(text)
    assert load_config(second.config).node == "gw2"
    names = [u["name"] for u in second.ok("user", "list", "--json").json()]
    assert names == ["alice"]

    # init on a third machine against the same database refuses and makes nothing.
    before = counts(pg_url)
    third = tmp_path / "gw3"
    refused = first(*init_args(third, pg_url), config=False)
    assert refused.code == 1
    assert "already holds a certgate install" in refused.err
    assert "users" in refused.err and "docs/deploy.md" in refused.err
    assert not third.exists()
    assert counts(pg_url) == before


def test_init_refuses_an_unreachable_database_and_makes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+asyncpg://certgate:s3cret@127.0.0.1:{port}/certgate"
    runner = Certgate(tmp_path / "gw", capsys)
    result = runner(*init_args(runner.data_dir, url), config=False)
    assert result.code == 1
    first_line = result.err.strip().splitlines()[0]
    assert first_line.startswith("certgate: cannot reach the database postgresql+asyncpg://"
                                 f"certgate:***@127.0.0.1:{port}/certgate")
    assert "s3cret" not in result.err
    assert not runner.data_dir.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--database-url", "sqlite+aiosqlite:///x.db"], "expected postgresql+asyncpg://"),
    (["--database-url", "not a url"], "expected postgresql+asyncpg://"),
    (["--database-url", "postgresql+asyncpg://h/db", "--node", "-bad"], "not a node name"),
    (["--node", "gw1"], "give --database-url too"),
])
def test_init_database_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    args: list[str], message: str) -> None:
    runner = Certgate(tmp_path / "gw", capsys)
    result = runner("init", "--data-dir", str(runner.data_dir), "--hostname", "gw.test",
                    "--no-ca-passphrase", *args, config=False)
    assert result.code == 2
    assert message in result.err
    assert not runner.data_dir.exists()


def test_move_to_keeps_a_quoted_database_line(tmp_path: Path) -> None:
    config = tmp_path / "certgate.yaml"
    config.write_text('data_dir: .\ndatabase_url: "postgresql+asyncpg://a@h/x"\nnode: "n"\n')
    point_config(config, "postgresql+asyncpg://b@h/y")
    assert config.read_text() == ('data_dir: .\ndatabase_url: postgresql+asyncpg://b@h/y\n'
                                  'node: "n"\n')
