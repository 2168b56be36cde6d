"""The dependency rule from STYLE.md, checked by walking every import with ``ast``.

``policies`` imports neither ``gateway`` nor ``pki``; ``pki`` never imports ``gateway``.
Inside ``gateway``, nothing outside ``cli`` imports ``gateway.cli``, and the request
path (``gateway.http``) never imports ``gateway.store``. The policy engine
additionally does no I/O: it imports nothing that could.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules_imported(path: Path) -> set[str]:
    """The dotted modules one source file imports (absolute imports only; relative
    imports are not used in this code base and would be a finding of their own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def imports_of(path: Path) -> set[str]:
    """The top-level packages one source file imports."""
    return {name.split(".")[0] for name in modules_imported(path)}


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


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("gateway/http", "gateway.store"),
        ("gateway/identity", "gateway.cli"),
        ("gateway/auth", "gateway.cli"),
        ("gateway/audit", "gateway.cli"),
        ("gateway/ops", "gateway.cli"),
        ("gateway/manage", "gateway.cli"),
        ("gateway/store", "gateway.cli"),
        ("gateway/http", "gateway.cli"),
        ("gateway/demo", "gateway.cli"),
        ("gateway/console", "gateway.cli"),
    ],
)
def test_gateway_sub_package_rules(importer: str, forbidden: str) -> None:
    files = sorted((ROOT / importer).rglob("*.py"))
    assert files, f"{importer} has no modules"
    offenders = {str(f.relative_to(ROOT)): sorted(n for n in modules_imported(f)
                                                  if _within(n, forbidden))
                 for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_cli_imports_cli() -> None:
    for path in sorted((ROOT / "gateway").glob("*.py")):  # the wiring modules
        assert not any(_within(n, "gateway.cli") for n in modules_imported(path)), path


def test_gateway_top_level_is_wiring_only() -> None:
    modules = {p.name for p in (ROOT / "gateway").glob("*.py")}
    assert modules == {"__init__.py", "lifecycle.py", "runtime.py", "server.py"}
    assert (ROOT / "gateway" / "config" / "__init__.py").is_file()  # the config package


def test_no_module_is_longer_than_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for pkg in ("gateway", "pki", "policies")
            for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


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
    bad.write_text("from gateway.store.db import x\nimport pki.ca\nfrom . import sibling\n")
    assert imports_of(bad) == {"gateway", "pki"}
    assert modules_imported(bad) == {"gateway.store.db", "pki.ca"}
    assert _within("gateway.store.db", "gateway.store")
    assert not _within("gateway.storefront", "gateway.store")
