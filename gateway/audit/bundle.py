"""The export bundle's format: what ``audit export`` writes and ``verify --bundle`` reads.

A bundle is JSON lines, each a canonical JSON object (sorted keys, no whitespace,
UTF-8) tagged with its ``kind``, in this order:

1. ``header``      format name and version, when and by whom (OS user, host) it was
                   exported, the time range asked for, and per node the stretch of
                   its chain inside (``first_seq``, ``last_seq``, ``records``);
2. ``checkpoint``  the signed checkpoints at a seq inside those stretches;
3. ``record``      every record with all its chain fields (``gateway.audit.chain``),
                   node by node in seq order (only in a ``jsonl`` bundle);
4. ``end``         the counts and ``sha256``: the SHA-256 of every byte before the
                   end line, so that one changed byte anywhere is noticed.

A ``csv`` export puts the records in ``FILE`` (one row per record, the ``FIELDS``
as columns, for spreadsheets) and everything else in ``FILE.bundle.jsonl``, whose
end line also carries ``records_sha256``, the SHA-256 of the CSV file. In the CSV,
an empty unquoted cell is a missing value (null), every text is quoted (so an
empty text stays ``""``), numbers are bare; a text that a spreadsheet would run as
a formula (starting with ``= + - @``, a tab or a carriage return), or that starts
with ``'``, gets one ``'`` in front, which reading removes again.

Pure: bytes in, bytes out; ``gateway.manage.audit_export`` reads and writes files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.audit.chain import FIELDS, ChainRow

FORMAT = "certgate-audit-bundle"
VERSION = 1
SIDECAR_SUFFIX = ".bundle.jsonl"
INT_FIELDS = frozenset({"seq", "status"})
FLOAT_FIELDS = frozenset({"duration_ms"})

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "'")
# One CSV cell: quoted (with "" for a quote inside) or bare; then a comma or the end.
_CELL = re.compile(r'"((?:[^"]|"")*)"|([^,"\r\n]*)')


def line(data: dict[str, Any]) -> bytes:
    """One bundle line: canonical JSON and a newline."""
    return (_ENCODE(data) + "\n").encode("utf-8")


def record_line(row: ChainRow) -> bytes:
    return line({**{name: row.get(name) for name in FIELDS}, "kind": "record"})


def checkpoint_line(checkpoint: dict[str, Any]) -> bytes:
    return line({**checkpoint, "kind": "checkpoint"})


def new_digest() -> Any:
    return hashlib.sha256()


# --- CSV -------------------------------------------------------------------------------


def csv_header() -> bytes:
    return (",".join(FIELDS) + "\r\n").encode("utf-8")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"a record field of type {type(value).__name__}")
    if not isinstance(value, str):
        return repr(value)  # the shortest round-trip form, as JSON writes it
    if value.startswith(_FORMULA):
        value = "'" + value
    return '"' + value.replace('"', '""') + '"'


def csv_row(row: ChainRow) -> bytes:
    return (",".join(_cell(row.get(name)) for name in FIELDS) + "\r\n").encode("utf-8")


def _value(name: str, quoted: str | None, bare: str) -> Any:
    if quoted is not None:
        if name in INT_FIELDS or name in FLOAT_FIELDS:
            raise ValueError(f"{name} holds text where a number belongs")
        text = quoted.replace('""', '"')
        return text[1:] if text.startswith("'") else text
    if not bare:
        return None
    if name in INT_FIELDS:
        if not re.fullmatch(r"-?[0-9]{1,19}", bare):
            raise ValueError(f"{name} '{bare}' is not a whole number")
        return int(bare)
    if name in FLOAT_FIELDS:
        try:
            return float(bare)
        except ValueError:
            raise ValueError(f"{name} '{bare}' is not a number") from None
    raise ValueError(f"{name} holds unquoted text '{bare[:40]}'")


def _cells(text: str) -> list[tuple[str | None, str]]:
    cells: list[tuple[str | None, str]] = []
    pos = 0
    while True:
        match = _CELL.match(text, pos)
        assert match is not None  # the bare alternative matches the empty string
        cells.append((match.group(1), match.group(2) or ""))
        pos = match.end()
        if pos == len(text):
            return cells
        if text[pos] != ",":
            raise ValueError(f"unexpected {text[pos]!r} after a cell")
        pos += 1


def rows_from_csv(lines: Iterable[bytes], digest: Any
                  ) -> Iterator[tuple[int, ChainRow | str]]:
    """Each CSV record after the header row as (CSV line number, row), or (line
    number, what is wrong with it). Every byte read goes into ``digest``."""
    pending = ""
    start = 0
    for number, raw in enumerate(lines, 1):
        digest.update(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, "not UTF-8 text"
            continue
        if not pending:
            start = number
        pending += text
        if pending.count('"') % 2:  # a quoted cell goes on over the next line
            continue
        record, pending = pending.removesuffix("\n").removesuffix("\r"), ""
        if start == 1:
            if record != ",".join(FIELDS):
                yield 1, "the first row does not name the record fields"
            continue
        try:
            cells = _cells(record)
            if len(cells) != len(FIELDS):
                raise ValueError(f"{len(cells)} cells instead of {len(FIELDS)}")
            yield start, {name: _value(name, quoted, bare)
                          for name, (quoted, bare) in zip(FIELDS, cells, strict=True)}
        except ValueError as exc:
            yield start, str(exc)
    if pending:
        yield start, "a quoted cell is never closed (the file was cut short)"
