"""The dependency rule from STYLE.md, checked by walking every import with ``ast``.

``policies`` imports neither ``gateway`` nor ``pki``; ``pki`` never imports ``gateway``.
The policy engine additionally does no I/O: it imports nothing that could.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports_of(path: Path) -> set[str]:
    """The top-level packages one source file imports (absolute imports only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def imported_top_levels(package: str) -> dict[str, set[str]]:
    """Map each module file of ``package`` to the top-level packages it imports."""
    return {
        str(path.relative_to(ROOT)): imports_of(path)
        for path in sorted((ROOT / package).rglob("*.py"))
    }


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
    # Guard against a check that can't fail: the walker must notice upward imports.
    bad = tmp_path / "bad.py"
    bad.write_text("from gateway.config import Config\nimport pki.ca\nfrom . import sibling\n")
    assert imports_of(bad) == {"gateway", "pki"}
