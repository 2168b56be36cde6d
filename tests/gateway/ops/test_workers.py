"""``certgate serve --workers 2`` as real processes: a worker that dies stops the
whole gateway loudly, workers never outlive a killed parent, and a second ``serve``
on the same data dir is refused."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.ops.workers import ORPHANED_EXIT, WorkerFailed, follow_parent, supervise
from tests.gateway.conftest import Template
from tests.gateway.ops.test_multiproc import REPO, fixed_ports, serving


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def ended(pid: int) -> None:
    """Until ``pid`` (not necessarily our child) has ended: its pidfd turns readable."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, done.set_result, None)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def test_a_worker_killed_stops_the_other_and_the_parent_exits_loudly(
        tmp_path: Path, gateway_template: Template) -> None:
    config_path, _ = await fixed_ports(tmp_path, gateway_template)
    async with serving(config_path, 2) as proc:
        workers = children_of(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[1], signal.SIGKILL)
        async with asyncio.timeout(20):  # the survivor drains nothing: quick
            _, err = await proc.communicate()
        assert proc.returncode == 1
        text = err.decode()
        assert f"worker 1 (pid {workers[1]}) was killed by SIGKILL" in text, text[-2000:]
        assert "the other workers were stopped" in text
        assert not alive(workers[0])


async def test_workers_end_when_the_parent_is_killed_and_the_data_dir_is_free_again(
        tmp_path: Path, gateway_template: Template) -> None:
    config_path, _ = await fixed_ports(tmp_path, gateway_template)
    async with serving(config_path, 2) as proc:
        workers = children_of(proc.pid)
        assert len(workers) == 2, workers
        os.kill(proc.pid, signal.SIGKILL)  # no forwarding, no reaping: the kernel's signal
        async with asyncio.timeout(30):  # nothing in flight: the drains are quick
            for pid in workers:
                await ended(pid)
            _, err = await proc.communicate()  # the workers closed the inherited pipes
        assert proc.returncode == -signal.SIGKILL
        assert not any(alive(pid) for pid in workers)
        # Each drained as on a normal stop (SIGTERM), not killed outright.
        assert err.decode().count("stopping: draining requests in flight") == 2, \
            err.decode()[-2000:]
    # No orphan holds serve.lock: the service manager's restart is not refused.
    async with serving(config_path, 2) as again:
        assert again.returncode is None


def forked_follow(parent: int) -> tuple[int, str]:
    """A forked process runs ``follow_parent(parent, 3)`` then exits 0: its exit code
    and what it wrote on stderr."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.dup2(write, 2)
        follow_parent(parent, 3)
        os._exit(0)  # followed a live parent: the worker would run
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), said


def test_a_worker_whose_parent_died_before_it_followed_exits_at_once() -> None:
    assert forked_follow(os.getpid()) == (0, "")
    # The recorded parent is no longer the child's parent: it died before the prctl.
    gone = os.getpid() + 1_000_000
    code, said = forked_follow(gone)
    assert code == ORPHANED_EXIT
    assert said == (f"certgate worker 3: the serve process (pid {gone}) ended before "
                    "this worker started; exiting\n")


async def test_a_second_serve_on_the_same_data_dir_is_refused(
        tmp_path: Path, gateway_template: Template) -> None:
    config_path, admin_port = await fixed_ports(tmp_path, gateway_template)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    async with serving(config_path, 1) as first:
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli.main", "--config", str(config_path), "serve",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        async with asyncio.timeout(60):
            _, err = await second.communicate()
        assert second.returncode == 1
        data_dir = config_path.parent
        assert (f"certgate: another certgate serve (pid {first.pid}) is running on "
                f"{data_dir}; stop it first") in err.decode()
        # A command beside the gateway takes no lock: it runs.
        beside = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli.main", "--config", str(config_path), "user",
            "list", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        async with asyncio.timeout(60):
            out, err = await beside.communicate()
        assert beside.returncode == 0, err.decode()
        assert b"alice" in out
        # The first gateway still serves.
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{admin_port}/healthz") as resp:
            assert resp.status == 200
    # Once it ended, the kernel dropped its lock: the data dir can be served again.
    async with serving(config_path, 1) as again:
        assert again.returncode is None


def test_a_worker_failing_at_start_stops_the_others() -> None:
    def work(index: int) -> None:
        if index == 1:
            raise RuntimeError("cannot listen on the admin port")
        signal.pause()  # worker 0 runs until told to stop

    started = time.monotonic()
    with pytest.raises(WorkerFailed, match=r"^worker 1 \(pid \d+\) exited with code 1 "
                                           r"while the gateway was running; the other "
                                           r"workers were stopped$"):
        supervise(2, work)
    assert time.monotonic() - started < 20


def test_a_worker_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    def work(index: int) -> None:
        if index == 1:
            os._exit(3)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            signal.pause()

    started = time.monotonic()
    with pytest.raises(WorkerFailed, match=r"worker 1 \(pid \d+\) exited with code 3"):
        supervise(2, work, grace=0.5)
    assert time.monotonic() - started < 20
    assert signal.getsignal(signal.SIGTERM) is not None  # handlers put back
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
