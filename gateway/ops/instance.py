"""One ``certgate serve`` per data dir: an ``flock`` on ``<data_dir>/serve.lock``.

Two gateways on one data dir would empty each other's ``metrics.d`` and write the
same node's audit chain (a sequence clash). ``hold_data_dir`` takes an exclusive,
non-blocking lock for as long as ``serve`` runs and writes its pid into the file, so
a second start is refused naming the first. The kernel drops the lock when the
last process holding it ends (forked workers share it, and end when the parent
dies: ``gateway.ops.workers``), so a crash leaves no stale lock to clean up.

Only ``serve`` takes the lock; the CLI commands run beside a gateway and must not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "serve.lock"


class DataDirInUse(Exception):
    """Another gateway holds the data dir (or the lock file cannot be opened)."""


@contextlib.contextmanager
def hold_data_dir(data_dir: Path) -> Iterator[Path]:
    """Lock ``data_dir`` for this process (and its forked workers) while open.

    ``DataDirInUse`` in plain words when another ``certgate serve`` holds it."""
    path = data_dir / LOCK_NAME
    try:
        handle = open(path, "a+", encoding="ascii")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DataDirInUse(f"cannot open the lock file {path}: "
                           f"{exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        text = handle.read(32).strip()
        handle.close()
        who = f" (pid {text})" if text.isdigit() else ""
        raise DataDirInUse(
            f"another certgate serve{who} is running on {data_dir}; stop it first, or "
            "give this gateway its own data dir (two would empty each other's metrics "
            "and clash on the same audit chain)") from None
    try:
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
        yield path
    finally:
        handle.close()  # drops the lock (the kernel does it too if we die first)
