"""One normal form for request paths: the form the policy judges and the upstream receives.

Dot segments (also percent-encoded) are resolved, duplicate slashes collapsed,
percent-encoded unreserved characters decoded and other escapes upper-cased.
Ambiguous forms that different servers read differently are refused: encoded
slashes, backslashes, NUL and other control characters, malformed escapes, and
``..`` that would climb above the root.

Pure; no I/O.
"""

from __future__ import annotations

import re
import string

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3986 pchar plus "/": anything else in a raw path is refused.
_ALLOWED_RAW = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$")


class AmbiguousPathError(ValueError):
    """The path could be read two ways; the request is refused with 400."""


def _decode_unreserved(match: re.Match[str]) -> str:
    value = int(match.group(1), 16)
    char = chr(value)
    if value < 0x20 or value == 0x7F:
        raise AmbiguousPathError("the path contains an encoded control character")
    if char in ("/", "\\"):
        raise AmbiguousPathError("the path contains an encoded slash or backslash")
    return char if char in _UNRESERVED else f"%{match.group(1).upper()}"


# Paths that are already in normal form (no escapes, no dot or empty segments): the
# common case, answered by one regex match instead of a segment walk.
_PLAIN = re.compile(r"^(?:/[A-Za-z0-9\-_~!$&'()*+,;=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*)*/?$")


def normalise_path(raw_path: str) -> str:
    """Return the normalised path or raise ``AmbiguousPathError``."""
    if _PLAIN.match(raw_path):
        return raw_path
    return _normalise(raw_path)


def _normalise(raw_path: str) -> str:
    if not raw_path.startswith("/"):
        raise AmbiguousPathError("the path must start with '/'")
    if "\\" in raw_path:
        raise AmbiguousPathError("the path contains a backslash")
    if not _ALLOWED_RAW.match(raw_path):
        raise AmbiguousPathError("the path contains characters that must be percent-encoded")
    if _BAD_ESCAPE.search(raw_path):
        raise AmbiguousPathError("the path contains a malformed percent-escape")
    decoded = _ESCAPE.sub(_decode_unreserved, raw_path)
    out: list[str] = []
    segments = decoded.split("/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "..":
            if not out:
                raise AmbiguousPathError("the path climbs above the root with '..'")
            out.pop()
            if last:
                out.append("")
        elif segment == "." or segment == "":
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)
