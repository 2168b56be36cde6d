"""The audit spool: lines come back in order, a failed drain resumes without
writing a block twice, a torn last line is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.audit import spool as spool_module
from gateway.audit.spool import Spool


def test_a_failed_drain_resumes_after_the_last_whole_block(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "BLOCK", 16)  # many blocks from a few lines
    spool = Spool(tmp_path / "spool")
    data = b"".join(b'{"n":%d}\n' % n for n in range(20))
    spool.append(data, 20)
    out: list[bytes] = []
    calls = 0

    def flaky(block: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device")
        out.append(block)

    with pytest.raises(OSError):
        spool.drain(flaky)
    remaining = spool.records
    assert 0 < remaining < 20
    assert spool.drain(out.append) == remaining
    assert b"".join(out) == data
    assert spool.records == 0 and not spool.path.exists()


def test_a_torn_last_line_is_kept_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(b'{"n":1}\n{"n":2')  # a crash in the middle of a spool write
    spool = Spool(path)
    assert spool.records == 2
    out: list[bytes] = []
    assert spool.drain(out.append) == 2
    assert b"".join(out) == b'{"n":1}\n{"n":2\n'
