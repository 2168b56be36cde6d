"""The README's one-command demo, run as a real process and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_demo_reaches_ready_and_prints_instructions(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli.main", "demo", "--data-dir", str(tmp_path / "demo"),
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        text = "".join(lines)
        assert "certgate demo is ready." in text, text
        assert f"Import {tmp_path / 'demo' / 'demo.p12'}" in text
        password = (tmp_path / "demo" / "demo-p12-password.txt").read_text().strip()
        assert f"password: {password}" in text
        assert "https://intranet.localhost:" in text
        assert "this is a DEMO" in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
