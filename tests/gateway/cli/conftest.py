"""An initialised data directory and an in-process ``certgate`` runner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.main import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Certgate:
    """Runs ``certgate`` in-process against one data directory."""

    def __init__(self, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.data_dir = data_dir
        self.config = data_dir / "certgate.yaml"
        self._capsys = capsys

    def __call__(self, *args: str, config: bool = True) -> Result:
        self._capsys.readouterr()
        argv = (["--config", str(self.config)] if config else []) + list(args)
        code = main(argv)
        captured = self._capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return Result(code, captured.out, captured.err)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.code == 0, result.err
        return result


@pytest.fixture
def cg(tmp_path: Path, capsys: pytest.CaptureFixture[str],
       monkeypatch: pytest.MonkeyPatch) -> Certgate:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CERTGATE_CA_PASSPHRASE", raising=False)
    runner = Certgate(tmp_path / "gw", capsys)
    result = runner("init", "--data-dir", str(runner.data_dir), "--hostname", "gw.example.test",
                    "--hostname", "127.0.0.1", "--no-ca-passphrase", config=False)
    assert result.code == 0, result.err
    return runner


@pytest.fixture
def p12_password_file(tmp_path: Path) -> Path:
    path = tmp_path / "p12-password"
    path.write_text("correct-horse-battery\n")
    return path
