"""Compiling specs: duplicates refused with lines, files loaded for tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.loader import PolicyError, build_policy_set, compile_paths, load_policies
from policies.schema import AppPolicySpec
from policies.yamlsource import parse_yaml_document

DUP = """\
apps:
  - name: wiki
    host: wiki.example.test
    allow: [{groups: [staff]}]
  - name: wiki2
    host: WIKI.example.test
    allow: [{groups: [staff]}]
"""


def test_duplicate_host_names_the_second_line() -> None:
    doc = parse_yaml_document(DUP, "c.yaml")
    specs = [AppPolicySpec.model_validate(a) for a in doc.data["apps"]]
    with pytest.raises(PolicyError) as info:
        build_policy_set(specs, doc=doc)
    (issue,) = info.value.issues
    assert str(issue) == ("c.yaml:6: apps[1].host: host 'wiki.example.test' is already used by "
                          "apps[0].host (line 3)")


def test_duplicate_name_without_document() -> None:
    specs = [AppPolicySpec.model_validate({"name": "a", "host": h, "allow": [{"everyone": True}]})
             for h in ("a.test", "b.test")]
    with pytest.raises(PolicyError, match="name 'a' is already used"):
        build_policy_set(specs)


def test_load_policies_ignores_gateway_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("listen: 0.0.0.0:1\napps:\n  - name: w\n    host: w.test\n"
                    "    upstream: http://127.0.0.1:9\n    allow: [{groups: [s]}]\n")
    policy_set = load_policies(path)
    assert list(policy_set.apps) == ["w.test"]
    path.write_text("apps:\n  - name: w\n    host: w.test\n    allow: [{groups: [s]}]\n"
                    "    deny: [{paths: [nope]}]\n")
    with pytest.raises(PolicyError, match=r"c.yaml:5: apps\[0\].deny"):
        load_policies(path)


@pytest.mark.parametrize(("patterns", "path", "matches"), [
    (["/"], "/anything/at/all", True),
    (["/api/"], "/api", True),
    (["/api"], "/api/v1", True),
    (["/api"], "/apiv1", False),
    (["/admin/config/backup*"], "/admin/config/backup-2026.tar", True),
    (["/admin/config/backup*"], "/admin/config/backu", False),
    (["/*.php"], "/a/b/c.php", True),
    (["/*.php"], "/a/b/c.php5", False),
    (["/a.b"], "/axb", False),  # dots are literal, not regex
    (["/x", "/y*"], "/yes", True),
])
def test_path_patterns(patterns: list[str], path: str, matches: bool) -> None:
    assert compile_paths(patterns).matches(path) is matches


@pytest.mark.parametrize(("path", "sensitive", "insensitive"), [
    ("/ADMIN/x", False, True), ("/Admin", False, True), ("/admin", True, True),
    ("/adminx", False, False),
])
def test_path_patterns_for_case_insensitive_servers(path: str, sensitive: bool,
                                                    insensitive: bool) -> None:
    assert compile_paths(["/admin"]).matches(path) is sensitive
    assert compile_paths(["/admin"], ignore_case=True).matches(path) is insensitive
