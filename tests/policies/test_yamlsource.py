"""Line numbers, duplicate keys and syntax errors in YAML sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from policies.schema import AppPolicySpec
from policies.yamlsource import (
    SourceError,
    format_loc,
    issues_from_validation_error,
    load_yaml_document,
    parse_yaml_document,
)

TEXT = """\
listen: 0.0.0.0:8443
apps:
  - name: wiki
    host: wiki.example.test
    allow:
      - groups: [staff]
  - name: pbx
    host: pbx.example.test
    allow:
      - groups: [admins]
        source_networks:
          - 192.0.2.0/24
          - 10.0.0.300/8
"""


@pytest.mark.parametrize(("loc", "line"), [
    (("listen",), 1), (("apps",), 3), (("apps", 1, "host"), 8),
    (("apps", 1, "allow", 0, "source_networks", 1), 13),
    (("apps", 1, "allow", 0, "missing_key"), 10),  # nearest existing parent
])
def test_line_of(loc: tuple[str | int, ...], line: int) -> None:
    assert parse_yaml_document(TEXT, "c.yaml").line_of(loc) == line


def test_validation_errors_name_file_line_and_key() -> None:
    doc = parse_yaml_document(TEXT, "c.yaml")
    with pytest.raises(ValidationError) as info:
        TypeAdapter(list[AppPolicySpec]).validate_python(doc.data["apps"])
    issues = issues_from_validation_error(info.value, doc, prefix=("apps",))
    assert [str(i) for i in issues] == [
        "c.yaml:13: apps[1].allow[0].source_networks[1]: '10.0.0.300/8' is not a valid network "
        "(e.g. 192.0.2.0/24)"
    ]


def test_unknown_key_message() -> None:
    doc = parse_yaml_document("apps:\n  - name: a\n    host: a.test\n    alow: []\n", "c.yaml")
    with pytest.raises(ValidationError) as info:
        TypeAdapter(list[AppPolicySpec]).validate_python(doc.data["apps"])
    (issue,) = issues_from_validation_error(info.value, doc, prefix=("apps",))
    assert (issue.line, issue.key, issue.message) == (4, "apps[0].alow", "unknown key 'alow'")


@pytest.mark.parametrize(("text", "line", "message"), [
    ("a: 1\nb: [\n", 3, "YAML syntax error"),
    ("apps:\n  - name: a\n    name: b\n", 3, "key 'name' appears twice (first on line 2)"),
    ("- just\n- a list\n", 1, "top level must be a mapping"),
])
def test_refused_documents(text: str, line: int, message: str) -> None:
    with pytest.raises(SourceError) as info:
        parse_yaml_document(text, "c.yaml")
    (issue,) = info.value.issues
    assert issue.line == line and message in issue.message


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        load_yaml_document(tmp_path / "missing.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SourceError, match="cannot read it"):
        load_yaml_document(tmp_path / "bin.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_yaml_document(tmp_path / "empty.yaml").data == {}


def test_format_loc() -> None:
    assert format_loc(("apps", 1, "allow", 0, "paths")) == "apps[1].allow[0].paths"
