"""``serve --workers N``: fork the workers and supervise them as one gateway.

The parent forks the workers, forwards SIGTERM, SIGINT and SIGHUP to them, and
waits for ANY of them (``os.wait``), not for each in turn. A worker that ends
before the parent was asked to stop (it crashed, failed to start, was killed)
stops the whole gateway: the others get SIGTERM (they drain), then SIGKILL after
``GRACE_SECONDS``, and ``supervise`` raises ``WorkerFailed`` naming the worker and
how it ended. Half a gateway never keeps running silently; restarting is the
service manager's job (the systemd unit's ``Restart=on-failure``).

The other way round, a worker never outlives the parent: on Linux each asks the
kernel for SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``, even a
SIGKILLed parent), and drains and stops as on a normal stop; a worker whose parent
died before it asked exits at once. Otherwise orphans would keep serving with
nobody supervising them and keep ``serve.lock`` (inherited), so the service
manager's restart would be refused until someone killed them by hand.

Owns the fork, the forwarding and the reaping. Must not know what a worker runs
(``work`` is given) nor print: it logs, and the caller reports ``WorkerFailed``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from gateway.ops import multiproc

log = logging.getLogger("certgate")
GRACE_SECONDS = 40.0  # the drain takes up to 30 s; systemd's TimeoutStopSec is 45
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
ORPHANED_EXIT = 1  # a worker whose parent died before it could ask to follow it


class WorkerFailed(Exception):
    """A worker ended on its own, or badly; the gateway was stopped as a whole."""


def ending(status: int) -> str:
    """How a process ended, in words, from its ``wait`` status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"was killed by {name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


def die_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send this process ``signum`` when its parent dies.

    Linux only (``prctl(PR_SET_PDEATHSIG)`` through libc; no stdlib call): False,
    with a debug log, where it is unavailable. The request is not inherited by this
    process's own children. Strictly the kernel watches the parent THREAD that forked:
    ``supervise`` forks from the thread that then waits for the workers."""
    if not sys.platform.startswith("linux"):
        log.debug("no parent-death signal on %s: a worker may outlive its parent",
                  sys.platform)
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError) as exc:
        reason = f"no prctl in libc: {exc}"
    else:
        if prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0:
            return True
        reason = os.strerror(ctypes.get_errno())
    log.debug("prctl(PR_SET_PDEATHSIG) unavailable (%s): a worker may outlive its "
              "parent", reason)
    return False


def follow_parent(parent: int, index: int) -> None:
    """In a new worker: SIGTERM when ``parent`` dies; exit at once if it already has.

    ``parent`` is the pid recorded before the fork: if it died between the fork and
    the ``prctl``, the kernel will never send the signal, and ``getppid`` already
    names another process (init or a subreaper)."""
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:
        with contextlib.suppress(OSError):  # nobody may be reading stderr any more
            os.write(2, f"certgate worker {index}: the serve process (pid {parent}) "
                        "ended before this worker started; exiting\n".encode())
        os._exit(ORPHANED_EXIT)


def _fork(index: int, work: Callable[[int], None]) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 0  # the worker: run, and never return into the parent's code
    try:
        for sig in (*_FORWARDED, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)  # the worker's loop installs its own
        follow_parent(parent, index)  # after SIG_DFL: an early SIGTERM just ends it
        work(index)
    except BaseException as exc:  # reported, then the process ends
        print(f"certgate worker {index}: {exc}", file=sys.stderr, flush=True)
        code = 1
    os._exit(code)


def supervise(count: int, work: Callable[[int], None], *,
              grace: float = GRACE_SECONDS) -> None:
    """Fork ``count`` workers running ``work(index)`` and wait until all have ended.

    Returns when every worker stopped cleanly after the parent was asked to stop;
    raises ``WorkerFailed`` otherwise (after stopping the others)."""
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False
    failure: str | None = None

    def send(signum: int) -> None:
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = stopping or signum != signal.SIGHUP
        send(signum)

    def overdue(_signum: int, _frame: FrameType | None) -> None:
        log.error("workers still running %.0f s after SIGTERM: killing them", grace)
        send(signal.SIGKILL)

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    previous_alarm = signal.signal(signal.SIGALRM, overdue)
    try:
        for index in range(count):
            children[_fork(index, work)] = index
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:  # pragma: no cover - nothing left to wait for
                break
            index = children.pop(pid, -1)
            if index < 0:  # pragma: no cover - not one of ours
                continue
            multiproc.worker_exited(pid)
            clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            if stopping and clean:
                continue
            how = ending(status)
            if failure is None:
                failure = (f"worker {index} (pid {pid}) {how}"
                           + ("" if stopping else " while the gateway was running"))
            if not stopping:
                log.error("worker %d (pid %d) %s; stopping the other workers so no half "
                          "gateway keeps running", index, pid, how)
                stopping = True
                send(signal.SIGTERM)
                signal.setitimer(signal.ITIMER_REAL, grace)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure is not None:
        raise WorkerFailed(f"{failure}; the other workers were stopped")
