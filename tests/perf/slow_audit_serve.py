"""Benchmark-only launcher: ``certgate`` with a deliberately slowed audit store.

    python tests/perf/slow_audit_serve.py DELAY_SECONDS --config … serve …

Wraps ``DatabaseSink.write`` so that every batch the audit writer hands to the
database first sleeps ``DELAY_SECONDS`` (an ``asyncio.sleep``: the store is slow,
the loop is not), then runs the real insert; everything else is the real
``certgate`` CLI. Used by ``bench.py``'s ``audit-slow`` scenario to show that a slow
audit store does not slow requests. It lives here, not behind a config option: no
production setting can slow the audit log on purpose.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.audit.chain import ChainRow
from gateway.audit.sinks import DatabaseSink
from gateway.cli.main import main


def slow_down(delay: float) -> None:
    """Make every ``DatabaseSink.write`` wait ``delay`` seconds before the insert."""
    write = DatabaseSink.write

    async def slow_write(self: DatabaseSink, rows: list[ChainRow]) -> None:
        await asyncio.sleep(delay)
        await write(self, rows)

    DatabaseSink.write = slow_write  # type: ignore[method-assign]


if __name__ == "__main__":
    slow_down(float(sys.argv[1]))
    sys.argv = ["certgate", *sys.argv[2:]]
    raise SystemExit(main())
