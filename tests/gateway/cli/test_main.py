"""The ``certgate`` group loads a command's module only when it is used: ``--help``
lists every command from ``COMMANDS`` as the loaded commands would, and starts
without aiohttp, SQLAlchemy, cryptography, Jinja2 or pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from gateway.cli.main import COMMANDS, LazyGroup, cli, main

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("aiohttp", "sqlalchemy", "cryptography", "jinja2", "pydantic", "alembic", "segno")


def test_each_listed_line_is_the_command_s_own() -> None:
    ctx = click.Context(cli)
    for name, (_, _, line) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert line == command.get_short_help_str(limit=1000), name


def test_the_lazy_listing_reads_as_the_loaded_one(capsys: pytest.CaptureFixture[str]) -> None:
    lazy = LazyGroup("certgate")  # nothing loaded yet
    loaded = click.Group("certgate")
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        loaded.add_command(command, name)
    assert lazy.get_help(click.Context(lazy)) == loaded.get_help(click.Context(loaded))
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n  {name} " in out for name in COMMANDS)
    assert main(["no-such-command"]) == 2


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    line = _help_modules("--help")
    assert not line & set(HEAVY), line & set(HEAVY)
    assert not {m for m in line if m.startswith("gateway.cli.") and m.endswith("_cmd")}


def test_user_help_imports_only_the_user_commands() -> None:
    line = _help_modules("user", "--help")
    assert not line & set(HEAVY), line & set(HEAVY)
    assert {m for m in line if m.endswith("_cmd")} == {"gateway.cli.factor_cmd",
                                                       "gateway.cli.user_cmd"}


@pytest.mark.parametrize("argv", [("audit", "--help"), ("audit", "search", "--help"),
                                  ("audit", "export", "--help"), ("audit", "verify", "--help"),
                                  ("audit", "report", "--help")])
def test_audit_help_imports_only_the_audit_commands(argv: tuple[str, ...]) -> None:
    line = _help_modules(*argv)
    assert not line & set(HEAVY), line & set(HEAVY)
    assert {m for m in line if m.endswith("_cmd")} == {
        "gateway.cli.audit_cmd", "gateway.cli.audit_export_cmd", "gateway.cli.audit_search_cmd"}


def test_serve_help_imports_nothing_heavy() -> None:
    line = _help_modules("serve", "--help")
    assert not line & set(HEAVY), line & set(HEAVY)


def _help_modules(*argv: str) -> set[str]:
    """The top-level packages and ``gateway.cli`` modules imported by one run."""
    code = ("import sys\nfrom gateway.cli.main import main\ncode = main(sys.argv[1:])\n"
            "sys.stdout.flush()\n"
            "print('MODULES', code, *sorted({m.split('.')[0] for m in sys.modules}"
            " | {m for m in sys.modules if m.startswith('gateway.cli.')}), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                          text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          timeout=60, check=True)
    words = done.stderr.split("MODULES ", 1)[1].split()
    assert words[0] == "0", done.stderr
    return set(words[1:])
