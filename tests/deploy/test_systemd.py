"""The systemd unit stays current: ``systemd-analyze verify`` accepts it (with
ExecStart pointing at a real ``certgate``), the command and flags of ExecStart exist
in ``certgate serve --help``, ExecReload sends SIGHUP (which ``serve`` reloads on),
the hardening is in place and the stop timeout outlasts the drain."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gateway.cli.main import cli
from gateway.server import DRAIN_SECONDS

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "certgate.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_exec_start_is_certgate_serve_with_flags_it_has() -> None:
    argv = shlex.split(service()["ExecStart"])
    assert Path(argv[0]).name == "certgate"
    assert argv[1] == "serve"
    serve = cli.get_command(click.Context(cli), "serve")
    assert serve is not None
    known = {opt for param in serve.params for opt in getattr(param, "opts", [])}
    flags = [a.split("=", 1)[0] for a in argv[2:] if a.startswith("-")]
    assert set(flags) <= known, f"unknown serve flags: {set(flags) - known}"


def test_reload_hardening_and_stop_timeout() -> None:
    unit = service()
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"
    serve = cli.get_command(click.Context(cli), "serve")
    assert serve is not None and "SIGHUP reloads the config" in (serve.help or "")
    # A worker that dies stops the whole gateway (exit 1); systemd starts it again.
    assert unit["Restart"] == "on-failure"
    assert unit["User"] != "root"
    for key, value in {"NoNewPrivileges": "true", "ProtectSystem": "strict",
                       "ProtectHome": "true", "PrivateTmp": "true", "UMask": "0077"}.items():
        assert unit[key] == value, key
    data_dir = unit["Environment"].split("=", 1)[1].rsplit("/", 1)[0]
    assert unit["ReadWritePaths"] == data_dir == "/var/lib/certgate"
    assert float(unit["TimeoutStopSec"]) > DRAIN_SECONDS


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # ExecStart must name an executable that exists: a certgate that runs this checkout.
    certgate = tmp_path / "certgate"
    certgate.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m "
                        "gateway.cli.main \"$@\"\n")
    certgate.chmod(0o755)
    unit = tmp_path / "certgate.service"
    unit.write_text(UNIT.read_text().replace("/opt/certgate/venv/bin/certgate", str(certgate)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert subprocess.run([str(certgate), "serve", "--help"], capture_output=True,
                          timeout=60).returncode == 0
