"""``certgate audit export`` then ``audit verify --bundle`` on a reviewer's machine: only
the bundle and ``audit.pub`` in an empty directory, no config, no database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.cli.conftest import Certgate
from tests.gateway.cli.test_audit_cmd import set_node, write_records

ROOT = Path(__file__).resolve().parents[3]


def reviewer_copy(cg: Certgate, tmp_path: Path, *names: str) -> Path:
    """A directory holding only the given exported files and the public key."""
    here = tmp_path / "reviewer"
    here.mkdir()
    for name in names:
        shutil.copy(tmp_path / name, here / name)
    shutil.copy(cg.data_dir / "audit.pub", here / "audit.pub")
    return here


@pytest.mark.parametrize("name", ["trail.jsonl", "trail.csv"])
def test_an_export_verifies_offline_without_a_config(
        cg: Certgate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    set_node(cg, "gw1")
    write_records(cg.config, 6)
    out = cg.ok("audit", "export", "--format", name.split(".")[1], "--out",
                str(tmp_path / name)).out
    assert "node gw1: seq 1-6\nexported 6 record(s) of 1 node(s) and 1 signed checkpoint(s)" in out
    names = [name, name + ".bundle.jsonl"] if name.endswith(".csv") else [name]
    here = reviewer_copy(cg, tmp_path, *names)
    monkeypatch.chdir(here)
    monkeypatch.delenv("CERTGATE_CONFIG", raising=False)
    result = cg("audit", "verify", "--bundle", name, "--public-key", "audit.pub", config=False)
    assert result.code == 0, result.out + result.err
    assert "node gw1: OK, 6 record(s) (seq 1-6), 1 signed checkpoint(s) match" in result.out
    assert "note: chain verified from seq 1 (the start of the node's chain)" in result.out
    assert result.out.endswith("audit verify --bundle: OK, 6 record(s) on 1 node(s)\n")

    data = bytearray((here / name).read_bytes())
    at = data.index(b"000000000003")  # record 4's reference
    data[at + 11] = ord("9")
    (here / name).write_bytes(bytes(data))
    result = cg("audit", "verify", "--bundle", name, "--public-key", "audit.pub", "--json",
                config=False)
    assert result.code == 1
    problems = result.json()["nodes"][0]["problems"]
    assert problems[0] == {"seq": 4, "kind": "edited", "message":
                           "record 4 was edited: its content no longer matches its hash"}


def test_the_installed_command_needs_no_config_either(cg: Certgate, tmp_path: Path) -> None:
    write_records(cg.config, 2)
    cg.ok("audit", "export", "--format", "jsonl", "--out", str(tmp_path / "t.jsonl"))
    here = reviewer_copy(cg, tmp_path, "t.jsonl")
    env = {k: v for k, v in os.environ.items() if k != "CERTGATE_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "gateway.cli.main", "audit", "verify",
                           "--bundle", "t.jsonl", "--public-key", "audit.pub"], cwd=here,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "audit verify --bundle: OK, 2 record(s) on 1 node(s)" in done.stdout


def test_an_existing_file_is_not_overwritten_unless_forced(cg: Certgate, tmp_path: Path) -> None:
    write_records(cg.config, 2)
    out = tmp_path / "t.jsonl"
    out.write_text("the reviewer's own notes\n")
    result = cg("audit", "export", "--format", "jsonl", "--out", str(out))
    assert result.code == 1 and result.err == \
        f"certgate: {out} already exists; pass --force to replace it\n"
    assert out.read_text() == "the reviewer's own notes\n"
    cg.ok("audit", "export", "--format", "jsonl", "--out", str(out), "--force")
    assert out.read_bytes().startswith(b'{"exported_at":')


def test_bundle_mistakes_are_usage_errors_or_one_sentence(cg: Certgate, tmp_path: Path) -> None:
    result = cg("audit", "verify", "--bundle", "x.jsonl", config=False)
    assert result.code == 2 and "--bundle needs --public-key" in result.err
    result = cg("audit", "verify", "--bundle", "x.jsonl", "--since", "1d",
                "--public-key", str(cg.data_dir / "audit.pub"), config=False)
    assert result.code == 2 and "--since and --checkpoints do not apply" in result.err
    result = cg("audit", "verify", "--bundle", str(tmp_path / "x.jsonl"), "--public-key",
                str(cg.data_dir / "audit.pub"), config=False)
    assert result.code == 1 and result.err == f"certgate: no bundle file at {tmp_path}/x.jsonl\n"
    result = cg("audit", "export", "--format", "xml", "--out", "x")
    assert result.code == 2
