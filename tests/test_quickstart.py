"""``docs/quickstart.md`` followed word for word: its ``sh`` blocks, run in order.

The commands come from the file itself, so the doc and this test cannot drift
apart. Only what must change on a test machine is substituted: the install block
(a ``certgate`` on PATH that runs this checkout), the data directory, the
listener ports, the upstream address, and the CA passphrase the doc says may
come from ``CERTGATE_CA_PASSPHRASE``. The gateway is then reached with curl
and the issued ``.p12``.
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "docs" / "quickstart.md"
DATA_DIR = "/var/lib/certgate"
UPSTREAM = "http://10.0.0.10:8080"


def fenced_blocks(text: str, section: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block after the heading ``section``."""
    body = text[text.index(f"## {section}"):]
    return re.findall(r"^```(\w+)\n(.*?)^```$", body, flags=re.M | re.S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"wiki says hello to {self.headers.get('X-Certgate-User')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _script(tmp_path: Path, upstream: str, ports: dict[str, int]) -> str:
    blocks = fenced_blocks(QUICKSTART.read_text(), "From nothing to a first protected app")
    languages = [lang for lang, _ in blocks]
    assert languages == ["sh", "sh", "yaml", "sh"], languages
    install, setup, app, serve = (body for _, body in blocks)
    assert "pip install ." in install and "PATH=" in install
    data_dir = str(tmp_path / "certgate")
    # The install block, replaced by a `certgate` on PATH that runs this checkout.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "certgate"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gateway.cli.main "$@"\n')
    wrapper.chmod(0o755)
    listeners = (f"s/^listen: .*/listen: \"127.0.0.1:{ports['public']}\"/; "
                 f"s/^admin_listen: .*/admin_listen: \"127.0.0.1:{ports['admin']}\"/; "
                 f"s/^pki_listen: .*/pki_listen: \"127.0.0.1:{ports['pki']}\"/")
    setup_lines = []
    for line in setup.splitlines():
        setup_lines.append(line)
        if line.startswith("certgate init "):  # the ports this machine has free
            setup_lines.append(f"sed -i '{listeners}' {DATA_DIR}/certgate.yaml")
    assert UPSTREAM in app
    serve_lines = [("exec " + line) if line.strip() == "certgate serve" else line
                   for line in serve.splitlines()]
    assert serve_lines[-1] == "exec certgate serve", serve_lines
    script = "\n".join([
        "set -eu",
        *setup_lines,
        f"cat >> {DATA_DIR}/certgate.yaml <<'YAML'",
        app.replace(UPSTREAM, upstream).rstrip("\n"),
        "YAML",
        *serve_lines,
    ])
    return script.replace(DATA_DIR, data_dir)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_quickstart_commands_reach_the_protected_app(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ports = {"public": _free_port(), "admin": _free_port(), "pki": _free_port()}
    script = _script(tmp_path, f"http://127.0.0.1:{server.server_address[1]}", ports)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT), "CERTGATE_CA_PASSPHRASE": "quickstart passphrase"}
    env.pop("CERTGATE_CONFIG", None)
    proc = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if line.startswith("certgate ready"):
                break
        text = "".join(out)
        assert "certgate ready" in text, text
        password = re.search(r"password: (\S+)", text)
        assert password is not None, text
        data = tmp_path / "certgate"
        port = ports["public"]
        curl = subprocess.run(
            ["curl", "-sS", "--max-time", "20", "--cacert", str(data / "ca" / "root.pem"),
             "--cert-type", "P12", "--cert", f"{tmp_path / 'alice.p12'}:{password.group(1)}",
             "--resolve", f"wiki.example.com:{port}:127.0.0.1",
             f"https://wiki.example.com:{port}/"],
            capture_output=True, text=True, timeout=30)
        assert curl.returncode == 0, curl.stderr
        assert curl.stdout == "wiki says hello to alice\n", curl.stdout
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(30)
        server.shutdown()
        server.server_close()
