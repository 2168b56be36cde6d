"""The dependency rule from STYLE.md, checked by walking every import with ``ast``.

``policies`` imports neither ``gateway`` nor ``pki``; ``pki`` never imports ``gateway``.
The policy engine additionally does no I/O: it imports nothing that could.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_top_levels(package: str) -> dict[str, set[str]]:
    """Map each module file of ``package`` to the top-level packages it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("policies", {"gateway", "pki"}),
        ("pki", {"gateway", "policies"}),
    ],
)
def test_package_does_not_import_upward(package: str, forbidden: set[str]) -> None:
    modules = imported_top_levels(package)
    assert modules, f"{package} has no modules"
    offenders = {m: sorted(names & forbidden) for m, names in modules.items() if names & forbidden}
    assert offenders == {}


IO_MODULES = {
    "asyncio", "socket", "ssl", "subprocess", "os", "io", "aiohttp", "sqlalchemy", "requests",
    "urllib", "http", "time", "logging", "pathlib", "shutil", "threading",
}


def test_policy_engine_imports_nothing_that_does_io() -> None:
    names = imported_top_levels("policies")["policies/engine.py"]
    assert names & IO_MODULES == set()


def test_layering_check_sees_a_violation(tmp_path: Path) -> None:
    # Guard against a check that can't fail: the walker must notice an upward import.
    (tmp_path / "bad.py").write_text("from gateway.config import Config\nimport pki.ca\n")
    tree = ast.parse((tmp_path / "bad.py").read_text())
    tops = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    tops |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert tops == {"gateway", "pki"}
