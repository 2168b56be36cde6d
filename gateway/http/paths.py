"""One normal form for request paths: the form the policy judges and the upstream receives.

Dot segments (also percent-encoded) are resolved, duplicate slashes collapsed,
percent-encoded unreserved characters decoded and other escapes upper-cased.
Ambiguous forms that different servers read differently are refused: encoded
slashes, backslashes, NUL and other control characters, malformed escapes,
percent-encodings that are not valid UTF-8 (overlong forms such as ``%c0%ae``),
double encodings (``%252e``, ``%252f``) and ``..`` that would climb above the root.

``;`` path parameters are refused by default: servlet containers (Tomcat, Jetty)
strip them before routing, so ``/admin;x/secret`` and ``/public/..;/private`` would
reach a part of the app the policy never judged. An app that needs matrix
parameters opts in (``path_parameters: allow``); then dot and empty segments lose
their parameters (``..;x`` is ``..``, as the containers read it) and the policy
judges ``judged_path``: the normal form with every parameter removed. An app on a
case-insensitive upstream (``path_case: insensitive``, IIS and other Windows
servers) also refuses segments ending in a dot or a space, which Windows drops.

Pure; no I/O.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# "%25" followed by an escape: a second decoding by the upstream would see another
# character than the policy did (%252e -> %2e -> ".").
_DOUBLE_ESCAPE = re.compile(r"%25[0-9A-Fa-f]{2}")
_HIGH_ESCAPE = re.compile(r"%[89A-Fa-f][0-9A-Fa-f]")
_SEMICOLON = re.compile(r";|%3[Bb]")
# RFC 3986 pchar plus "/": anything else in a raw path is refused.
_ALLOWED_RAW = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$")


class AmbiguousPathError(ValueError):
    """The path could be read two ways; the request is refused with 400."""


@dataclass(frozen=True, slots=True)
class PathRules:
    """How one app's paths are read; built once per config from its policy keys."""

    parameters: bool = False  # ';' path parameters accepted (judged without them)
    windows: bool = False  # case-insensitive upstream: trailing dots and spaces refused


STRICT = PathRules()


def _decode_unreserved(match: re.Match[str]) -> str:
    value = int(match.group(1), 16)
    char = chr(value)
    if value < 0x20 or value == 0x7F:
        raise AmbiguousPathError("the path contains an encoded control character")
    if char in ("/", "\\"):
        raise AmbiguousPathError("the path contains an encoded slash or backslash")
    return char if char in _UNRESERVED else f"%{match.group(1).upper()}"


# Paths that are already in normal form (no escapes, no dot or empty segments, no
# ';'): the common case, answered by one regex match instead of a segment walk.
_PLAIN = re.compile(r"^(?:/[A-Za-z0-9\-_~!$&'()*+,=:@][A-Za-z0-9\-._~!$&'()*+,=:@]*)*/?$")


def normalise_path(raw_path: str, rules: PathRules = STRICT) -> str:
    """Return the normalised path (the form forwarded) or raise ``AmbiguousPathError``."""
    path = raw_path if _PLAIN.match(raw_path) else _normalise(raw_path, rules)
    if rules.windows:
        _refuse_windows_aliases(path)
    return path


def judged_path(path: str) -> str:
    """The normalised ``path`` as the policy judges it: without ``;`` parameters."""
    if ";" not in path:
        return path
    return "/".join(segment.split(";", 1)[0] for segment in path.split("/"))


def _refuse_windows_aliases(path: str) -> None:
    # Windows drops trailing dots and spaces from a name: "/admin./x" is "/admin/x".
    for segment in path.split("/"):
        name = segment.split(";", 1)[0]
        if name.endswith((".", "%20")):
            raise AmbiguousPathError(
                "the path has a segment ending in a dot or a space, which this app's "
                "server would drop")


def _normalise(raw_path: str, rules: PathRules = STRICT) -> str:
    if not raw_path.startswith("/"):
        raise AmbiguousPathError("the path must start with '/'")
    if "\\" in raw_path:
        raise AmbiguousPathError("the path contains a backslash")
    if not _ALLOWED_RAW.match(raw_path):
        raise AmbiguousPathError("the path contains characters that must be percent-encoded")
    if _BAD_ESCAPE.search(raw_path):
        raise AmbiguousPathError("the path contains a malformed percent-escape")
    if _DOUBLE_ESCAPE.search(raw_path):
        raise AmbiguousPathError("the path contains a double percent-encoding")
    if not rules.parameters and _SEMICOLON.search(raw_path):
        raise AmbiguousPathError("the path contains ';' parameters, which this app does "
                                 "not accept")
    if _HIGH_ESCAPE.search(raw_path):
        try:
            unquote_to_bytes(raw_path).decode("utf-8")
        except UnicodeDecodeError:
            raise AmbiguousPathError(
                "the path contains a percent-encoding that is not valid UTF-8") from None
    decoded = _ESCAPE.sub(_decode_unreserved, raw_path)
    out: list[str] = []
    segments = decoded.split("/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        # A dot or empty segment with parameters is still a dot or empty segment to
        # the servlet containers that accept parameters: resolve it, drop them.
        name = segment.split(";", 1)[0] if rules.parameters else segment
        if name == "..":
            if not out:
                raise AmbiguousPathError("the path climbs above the root with '..'")
            out.pop()
            if last:
                out.append("")
        elif name == "." or name == "":
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)
