"""The bundle's CSV cells: every value comes back as it was (null and "" apart, numbers
typed, formulas defused), and a damaged CSV row is named, never a crash."""

from __future__ import annotations

import hashlib

import pytest

from gateway.audit.bundle import FIELDS, csv_header, csv_row, rows_from_csv
from gateway.audit.chain import Chain
from tests.gateway.audit.helpers import record


def chained(**fields: object) -> dict[str, object]:
    return Chain("gw1").link({**record(0).fields(), **fields})


@pytest.mark.parametrize("fields", [
    {}, {"user": ""}, {"user": None}, {"path": '/a,"b"\r\n,c'}, {"user": "=1+2"},
    {"user": "'already"}, {"user": "+x"}, {"user": "@SUM(A1)"}, {"user": "-"},
    {"user": "\tx"}, {"path": "/ü€𝄞"}, {"duration_ms": 12.345}, {"duration_ms": None},
    {"status": None}, {"detail": '{"a":"b,c"}'},
])
def test_a_row_reads_back_exactly(fields: dict[str, object]) -> None:
    row = chained(**fields)
    [(_, back)] = list(rows_from_csv([csv_header(), *csv_row(row).splitlines(keepends=True)],
                                     hashlib.sha256()))
    assert back == row


def test_formulas_are_written_as_text() -> None:
    assert b",\"'=1+2\"," in csv_row(chained(user="=1+2"))


@pytest.mark.parametrize(("line", "message"), [
    (b'"gw1",x' + b",," * 11 + b"\r\n", "24 cells instead of 23"),
    (b",".join([b'"x"'] * len(FIELDS)) + b"\r\n", "seq holds text where a number belongs"),
    (b'"gw1",1e3' + b"," * (len(FIELDS) - 2) + b"\r\n", "seq '1e3' is not a whole number"),
    (b'"gw1",1,bare' + b"," * (len(FIELDS) - 3) + b"\r\n", "at holds unquoted text 'bare'"),
    (b'"gw1",1,"a"b' + b"," * (len(FIELDS) - 3) + b"\r\n", "unexpected 'b' after a cell"),
    (b'"gw1",1,"\xff"' + b"," * (len(FIELDS) - 3) + b"\r\n", "not UTF-8 text"),
    (b'"gw1,1\r\n', "a quoted cell is never closed"),
])
def test_a_damaged_row_is_named(line: bytes, message: str) -> None:
    [(number, problem)] = list(rows_from_csv([csv_header(), line], hashlib.sha256()))
    assert number == 2 and isinstance(problem, str) and message in problem, problem


def test_the_header_row_must_name_the_fields() -> None:
    assert list(rows_from_csv([b"a,b\r\n"], hashlib.sha256())) == [
        (1, "the first row does not name the record fields")]
