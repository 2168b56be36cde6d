"""The container image's Containerfile, linted against the repository: every COPY
source exists and gets past the ignore file, the user is not root, the data dir is
the volume the config lives in, the entrypoint is ``certgate serve``, the ports are
the defaults; its HEALTHCHECK command, run against a real gateway's admin listener,
passes (and fails against a closed port). Where docker or podman can build here,
the image is built and its healthcheck seen healthy."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import click
import pytest

from gateway.cli.main import cli
from gateway.config import Config
from gateway.manage.setup import CONFIG_TEMPLATE
from tests.gateway.conftest import Gateway

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"
IGNORE = CONTAINERFILE.with_name("Containerfile.dockerignore")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", CONTAINERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def one(word: str) -> str:
    values = [rest for w, rest in final_stage() if w == word]
    assert len(values) == 1, f"{word}: {values}"
    return values[0]


def ignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes."""
    result = False
    for pattern in IGNORE.read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            result = not negate
    return result


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    copies = [rest for word, rest in instructions() if word == "COPY"]
    assert copies
    for rest in copies:
        args = shlex.split(rest)
        if any(a.startswith("--from") for a in args):
            continue
        for source in [a for a in args if not a.startswith("--")][:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not ignored(source.rstrip("/")), f"COPY {source}: excluded by {IGNORE.name}"


def test_runs_as_an_unprivileged_user_with_the_data_dir_as_volume() -> None:
    user = one("USER")
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    assert "--gid certgate" in " ".join(r for w, r in final_stage() if w == "RUN")
    assert json.loads(one("VOLUME")) == ["/var/lib/certgate"]
    env = dict(re.findall(r"(\w+)=(\S+)", one("ENV")))
    assert env["CERTGATE_CONFIG"].startswith("/var/lib/certgate/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # nothing written under /opt
    assert one("WORKDIR") == "/var/lib/certgate"


def test_entrypoint_is_certgate_serve_and_ports_are_the_defaults() -> None:
    assert json.loads(one("ENTRYPOINT")) == ["certgate"]
    assert json.loads(one("CMD")) == ["serve"]
    assert cli.get_command(click.Context(cli), "serve") is not None
    exposed = {int(p) for p in one("EXPOSE").split()}
    listen = Config.model_fields["listen"].default.port
    admin = Config.model_fields["admin_listen"].default.port
    assert {listen, admin, 8080} == exposed
    assert '127.0.0.1:9443' in CONFIG_TEMPLATE  # what `init` writes, and the check asks


def healthcheck_argv(port: int) -> list[str]:
    rest = one("HEALTHCHECK")
    assert "--interval=" in rest and "--timeout=" in rest
    argv = json.loads(rest.split(" CMD ", 1)[1])
    assert argv[0] == "python"
    assert "http://127.0.0.1:9443/healthz" in argv[2]
    return [sys.executable, *argv[1:-1], argv[-1].replace(":9443/", f":{port}/")]


async def test_the_healthcheck_passes_against_a_running_gateway(gateway: Gateway) -> None:
    done = await asyncio.to_thread(subprocess.run, healthcheck_argv(gateway.admin_port),
                                   capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_healthcheck_fails_when_nothing_answers() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(healthcheck_argv(port), capture_output=True, timeout=30)
    assert done.returncode != 0


def builder() -> str | None:
    for tool in ("podman", "docker"):
        if shutil.which(tool) and subprocess.run([tool, "info"], capture_output=True,
                                                 timeout=30).returncode == 0:
            return tool
    return None


@pytest.mark.slow
@pytest.mark.skipif(builder() is None, reason="no working docker or podman here")
def test_the_image_builds_and_becomes_healthy(tmp_path: Path) -> None:
    tool = builder()
    assert tool is not None
    tag = f"certgate-test:{uuid.uuid4().hex[:8]}"
    volume = f"certgate-test-{uuid.uuid4().hex[:8]}"
    name = volume
    subprocess.run([tool, "build", "-f", str(CONTAINERFILE), "-t", tag, str(ROOT)],
                   check=True, timeout=1800)
    try:
        subprocess.run([tool, "run", "--rm", "-v", f"{volume}:/var/lib/certgate", tag, "init",
                        "--data-dir", "/var/lib/certgate", "--hostname", "gw.example.test",
                        "--no-ca-passphrase"], check=True, timeout=300)
        subprocess.run([tool, "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
                        "--health-interval", "2s", "-v", f"{volume}:/var/lib/certgate", tag],
                       check=True, timeout=120)
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline and status != "healthy":
            status = subprocess.run(
                [tool, "inspect", "--format", "{{.State.Health.Status}}", name],
                capture_output=True, text=True, timeout=30).stdout.strip()
            time.sleep(1)  # polling the container's state, not synchronising with it
        assert status == "healthy"
    finally:
        subprocess.run([tool, "rm", "-f", name], capture_output=True, timeout=120)
        subprocess.run([tool, "volume", "rm", "-f", volume], capture_output=True, timeout=120)
        subprocess.run([tool, "rmi", "-f", tag], capture_output=True, timeout=120)
