"""YAML documents that remember where each value came from.

Config and policy errors must name file, line and key, so the document is composed
with PyYAML's node marks kept, duplicate keys refused (YAML silently keeps the last
one, a classic way to lose a deny rule), and pydantic errors mapped back to lines.

Knows nothing about apps or the gateway. Reads a file only in ``load_yaml_document``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

Loc = Sequence[str | int]


@dataclass(frozen=True)
class SourceIssue:
    """One problem in a source file, located for a person to fix."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class SourceError(Exception):
    """A source file is unreadable or invalid; ``issues`` says where and why."""

    def __init__(self, issues: Sequence[SourceIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def format_loc(loc: Loc) -> str:
    """``("apps", 1, "allow", 0)`` -> ``apps[1].allow[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class YamlDocument:
    """Parsed data plus the line of every value."""

    file: str
    data: Any
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict, repr=False)

    def line_of(self, loc: Loc) -> int | None:
        """1-based line of the value at ``loc``, or of its nearest existing parent."""
        key = tuple(loc)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)


class _Composer(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys."""


def _walk(node: yaml.Node, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int],
          file: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise SourceError([SourceIssue(
                    file, key_node.start_mark.line + 1, format_loc((*path, key)),
                    f"key '{key}' appears twice (first on line {seen[key]})",
                )])
            seen[key] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, file)


def parse_yaml_document(text: str, file: str) -> YamlDocument:
    """Parse YAML text (pure); refuse syntax errors, duplicate keys, non-mapping tops."""
    try:
        node = yaml.compose(text, Loader=_Composer)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise SourceError([SourceIssue(file, line, "", f"YAML syntax error: {exc.problem}")]) \
            from None
    except yaml.YAMLError as exc:
        raise SourceError([SourceIssue(file, None, "", f"YAML error: {exc}")]) from None
    if node is None:
        return YamlDocument(file, {}, {(): 1})
    lines: dict[tuple[str | int, ...], int] = {}
    _walk(node, (), lines, file)
    data = yaml.load(text, Loader=_Composer)  # noqa: S506 - _Composer is a SafeLoader
    if not isinstance(data, dict):
        raise SourceError([SourceIssue(file, 1, "", "the top level must be a mapping of keys")])
    return YamlDocument(file, data, lines)


def load_yaml_document(path: Path) -> YamlDocument:
    """Read and parse ``path``; an unreadable file is a ``SourceError`` too."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError([SourceIssue(str(path), None, "", "the file does not exist")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SourceError([SourceIssue(str(path), None, "", f"cannot read it: {reason}")]) \
            from None
    return parse_yaml_document(text, str(path))


def _message(error: ErrorDetails) -> str:
    kind = error.get("type", "")
    loc = error.get("loc", ())
    last = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        return f"unknown key '{last}'"
    if kind == "missing":
        return f"missing required key '{last}'"
    msg = str(error.get("msg", "invalid value"))
    # pydantic prefixes messages from our own validators with "Value error, ".
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def issues_from_validation_error(
    exc: ValidationError, doc: YamlDocument, *, prefix: Loc = ()
) -> list[SourceIssue]:
    """Map every pydantic error to file, line, key and a human message."""
    issues: list[SourceIssue] = []
    for error in exc.errors():
        # Composed types add non-key entries to loc ("function-after[...]",
        # "list[str]"); they are never YAML keys, so leave them out.
        loc = tuple(p for p in error["loc"] if isinstance(p, int) or "[" not in p)
        full = (*prefix, *loc)
        issues.append(SourceIssue(doc.file, doc.line_of(full), format_loc(full), _message(error)))
    return issues

