"""Metrics that add up across ``serve --workers N``: prometheus-client's multiprocess mode.

Before the workers fork, ``prepare`` empties (or creates) this start's directory,
names it in ``PROMETHEUS_MULTIPROC_DIR`` and switches prometheus-client to values
kept in per-process files there; each worker then writes its own files and a scrape
of any worker reads them all (``Metrics.render``). Counts left by an earlier start
are removed, so a restart begins from zero as a single process does. When a worker
exits, ``worker_exited`` drops its live gauges (its counters stay in the sums).

Owns the directory and the switch. Must be called before any metric is created in
the process that forks, and never in a single-process start (it needs no files).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import multiprocess, values

DIRECTORY = "metrics.d"  # under the data dir: the one place certgate may write


def prepare(data_dir: Path) -> Path:
    """Make ``data_dir/metrics.d`` empty and this process's metrics file-backed;
    ``ValueError`` naming the directory when it cannot be made (nothing switched)."""
    path = data_dir / DIRECTORY
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.mkdir(mode=0o700, parents=True)
    except OSError as exc:
        raise ValueError(f"cannot make {path} for the workers' metrics: "
                         f"{exc.strerror or exc}") from None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    # prometheus-client picks its value class when first imported; the CLI has
    # imported it already, so switch it here (each forked worker writes its own file,
    # named after its pid).
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return path


def worker_exited(pid: int) -> None:
    """Forget a worker's live gauges (open connections, queue depths, ...)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
