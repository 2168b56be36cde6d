"""deploy/compose: the files compose.yaml mounts exist, haproxy.cfg passes ``haproxy -c``
and sends PROXY v2 to the ports the nodes listen on, and init-nodes.sh, run for real
against PostgreSQL, makes two nodes that share the database and trust HAProxy only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def compose() -> dict[str, Any]:
    data = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_every_mounted_file_exists_and_every_dependency_is_a_service() -> None:
    services = compose()["services"]
    assert {"db", "init", "node-a", "node-b", "haproxy"} <= services.keys()
    mounts = [volume.split(":")[0] for service in services.values()
              for volume in service.get("volumes", [])]
    local = [m for m in mounts if m.startswith(".")]
    assert local == ["./init-nodes.sh", "./haproxy.cfg"]
    for path in local:
        assert (COMPOSE / path).is_file(), path
    named = {m for m in mounts if not m.startswith((".", "/"))}
    assert named == set(compose()["volumes"])
    for name, service in services.items():
        depends = service.get("depends_on", [])
        assert set(depends) <= services.keys() - {name}, name
    # The address the nodes accept PROXY headers from is HAProxy's fixed one.
    fixed = services["haproxy"]["networks"]["certgate"]["ipv4_address"]
    assert services["init"]["environment"]["HAPROXY_ADDRESS"] == fixed


@pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")
def test_haproxy_cfg_is_valid_and_speaks_proxy_v2_to_every_node() -> None:
    cfg = COMPOSE / "haproxy.cfg"
    result = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr
    text = cfg.read_text()
    assert re.search(r"^\s+mode tcp$", text, re.MULTILINE)
    servers = re.findall(r"^\s+server (\S+) (\S+):(\d+) (.*)$", text, re.MULTILINE)
    assert sorted((name, port) for name, _, port, _ in servers) == [
        ("node-a", "8080"), ("node-a", "8443"), ("node-b", "8080"), ("node-b", "8443")]
    assert all("send-proxy-v2" in options and "check port 9443" in options
               for *_, options in servers)


def run_init(root: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CERTGATE_ROOT": str(root), "CERTGATE_HOSTNAME": "gw.example.test",
           "CERTGATE_DATABASE_URL": url, "CERTGATE_CA_PASSPHRASE": "correct horse battery",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run(["/bin/sh", str(COMPOSE / "init-nodes.sh")], env=env,
                          capture_output=True, text=True, timeout=300)


def test_init_nodes_makes_two_nodes_on_one_database(tmp_path: Path, pg_url: str) -> None:
    root = tmp_path / "srv"
    first = run_init(root, pg_url)
    assert first.returncode == 0, first.stdout + first.stderr
    a, b = (load_config(root / name / "certgate.yaml") for name in ("node-a", "node-b"))
    assert (a.node, b.node) == ("node-a", "node-b")
    assert a.database_url == b.database_url == pg_url
    haproxy = compose()["services"]["haproxy"]["networks"]["certgate"]["ipv4_address"]
    for config in (a, b):
        front = config.proxy_protocol
        assert front is not None and front.listeners == ("public", "pki")
        assert front.allows(haproxy) and not front.allows("172.30.0.11")
        # The ports haproxy.cfg sends to and checks.
        assert (config.listen.port, config.admin_listen.port) == (8443, 9443)
        assert config.admin_listen.host == "0.0.0.0"
        assert config.pki_listen is not None and config.pki_listen.port == 8080
    # The same CA and keys on both: a copy, not a second install.
    for rel in ("ca/root.pem", "secrets.key", "audit.key", "keys/assertion-es256.pem"):
        assert (root / "node-a" / rel).read_bytes() == (root / "node-b" / rel).read_bytes()
    # A second run changes nothing.
    again = run_init(root, pg_url)
    assert again.returncode == 0 and "nothing to do" in again.stdout
