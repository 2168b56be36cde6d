"""The audit writer: every event becomes one chained record, written off the request path.

``emit`` only appends to an in-memory queue (O(1), never awaits). A background
task takes the queue in batches: each record is numbered and hashed into this
node's chain (``gateway.audit.chain``) in a worker thread as it is taken, *before*
any write, so the chain is continuous whatever happens to the writes; then the
batch goes to every destination (``gateway.audit.sinks``): the ``audit_records``
table (one transaction per batch) and, when ``audit.path`` is set, a JSON-lines
file. When ``audit.syslog`` is set, each record is also handed to the syslog forward
(``gateway.audit.syslog``) as soon as it is chained: a copy with its own bounded
buffer, which neither waits for nor holds up the destinations. ``close`` drains
everything, so a graceful shutdown loses nothing. At start
the chain continues from the newest record any destination or the spool holds.

When a destination can't take writes (the database down, a disk full), nothing is
dropped:

- chained records stay in memory, in order, up to ``memory_limit`` (the queue
  bound, documented in docs/admin-guide.md);
- beyond that the oldest go to the local spool file (``gateway.audit.spool``, in the
  data directory, fsync'ed per batch) if it can be written; if it can't either,
  memory keeps them all, unbounded, because losing records is worse than using memory;
- the writer retries every ``retry_interval`` and says it is unwell: ``failing_since``
  and ``last_error`` feed ``/readyz`` (``degraded``) and the metrics, and the request
  story refuses requests while failing when the site set ``audit.on_failure: deny``;
- once writes work again, the spool is written first, then memory, so the log keeps
  the order of decisions; each destination gets only what it lacks; the state clears;
- a spool left by an earlier process is written before anything new; at shutdown,
  whatever can't be written goes to the spool.

Must not block the event loop, and must not drop records silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path

from gateway.audit.chain import Chain, ChainRow
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.record import AuditRecord
from gateway.audit.sinks import AuditSinkError, FileSink, Sink, decode_line, encode_lines
from gateway.audit.spool import Spool
from gateway.audit.syslog import SyslogForwarder

__all__ = ["AuditRecord", "AuditWriter"]

log = logging.getLogger("certgate.audit")
_utc_now: Callable[[], datetime] = partial(datetime.now, UTC)
# Batches a flush may chain while writing the one before (bounded, so that under
# sustained overload a flush still ends and checkpoints stay due).
PIPELINE_ROUNDS = 16


class AuditWriter:
    def __init__(self, path: Path | None = None, *, node: str = "local",
                 sinks: Sequence[Sink] = (), spool_path: Path | None = None,
                 checkpointer: Checkpointer | None = None,
                 syslog: SyslogForwarder | None = None,
                 memory_limit: int = 100_000, flush_interval: float = 0.2,
                 batch_size: int = 1024, retry_interval: float = 1.0,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.path = path
        self.node = node
        self._sinks: list[Sink] = [*sinks, *([FileSink(path, node)] if path else [])]
        self._queue: deque[AuditRecord] = deque()  # emitted, not chained yet
        self._pending: deque[ChainRow] = deque()  # chained, not in every destination yet
        self._chain: Chain | None = None
        self.checkpointer = checkpointer
        self.syslog = syslog
        self._spool = Spool(spool_path) if spool_path is not None else None
        self._memory_limit = memory_limit
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._retry_interval = retry_interval
        self._clock = clock
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one flush at a time: batches stay whole and in order
        self._inflight: set[asyncio.Task[None]] = set()
        self.written = 0
        self.failing_since: datetime | None = None
        self.last_error: str | None = None

    @property
    def failing(self) -> bool:
        """True while a destination can't be written (records are being kept elsewhere)."""
        return self.failing_since is not None

    @property
    def spooled(self) -> int:
        """Records waiting because a destination failed: in the spool file, and in
        memory while failing (a healthy queue is only a batch in transit)."""
        on_disk = self._spool.records if self._spool is not None else 0
        return on_disk + (len(self) if self.failing else 0)

    @property
    def spool_path(self) -> Path | None:
        return self._spool.path if self._spool is not None else None

    @property
    def head(self) -> tuple[int, str] | None:
        """The chain's newest (seq, hash), once started."""
        return None if self._chain is None else (self._chain.seq, self._chain.head)

    def emit(self, record: AuditRecord) -> None:
        """Queue a record; never blocks. Unbounded here on purpose: a failed flush
        moves the overflow to the spool, and nothing is ever dropped."""
        self._queue.append(record)
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    async def start(self) -> None:
        """Find where this node's chain stands: the newest record any destination or
        the spool holds. Raises ``AuditSinkError`` when a destination can't say."""
        async with self._lock:
            await self._start()

    async def _start(self) -> None:
        if self._chain is not None:
            return
        best: tuple[int, str] | None = None
        for sink in self._sinks:
            head = await sink.head()
            sink.done = head[0] if head else 0
            best = head if head and (best is None or head[0] > best[0]) else best
        last = await asyncio.to_thread(self._spool.last_line) if self._spool else None
        row = decode_line(last) if last else None
        if row is not None and row.get("node") == self.node \
                and (best is None or row["seq"] > best[0]):
            best = (int(row["seq"]), str(row["hash"]))
        self._chain = Chain(self.node, *best) if best else Chain(self.node)
        if self.checkpointer is not None:
            self.checkpointer.started_at(self._chain.seq)

    def _link(self, records: list[AuditRecord]) -> list[ChainRow]:
        """Worker thread: number and hash ``records`` into ``_pending``. Runs to the
        end even when the flush awaiting it is cancelled, so nothing taken is lost."""
        chain, pending = self._chain, self._pending
        assert chain is not None
        linked: list[ChainRow] = []
        for record in records:
            try:
                pending.append(row := chain.link(record.fields()))
            except (TypeError, ValueError) as exc:  # a detail JSON can't take, a lone surrogate
                log.error("audit record %s (%s) could not be encoded (%s); recorded as "
                          "audit.unencodable", record.reference, record.type,
                          type(exc).__name__)
                pending.append(row := chain.link(AuditRecord.event(
                    "audit.unencodable", record.at, reference=record.reference,
                    reason="unencodable", decision=record.decision,
                    detail={"type": record.type, "error": type(exc).__name__}).fields()))
            linked.append(row)
        return linked

    async def _link_queue(self, limit: int | None = None) -> None:
        """Chain what is queued, at most ``limit`` records (in a worker thread), and
        hand the new records to the syslog forward, which copies them whatever happens
        to the writes. ``_link`` appends to ``_pending`` from its thread: nothing
        iterates ``_pending`` until this returns (deque appends and pops are
        thread-safe, iteration is not)."""
        count = len(self._queue) if limit is None else min(limit, len(self._queue))
        records = [self._queue.popleft() for _ in range(count)]
        linked = await asyncio.to_thread(self._link, records)
        if self.syslog is not None:
            self.syslog.offer(linked)

    async def flush(self) -> None:
        """Chain the queue, write the spool, then memory, in order. On failure the
        records stay (the overflow beyond ``memory_limit`` moves to the spool) and
        ``OSError`` is raised. Shielded: a cancelled caller never cuts a batch in two."""
        task = asyncio.ensure_future(self._flush_locked())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        await asyncio.shield(task)

    async def _flush_locked(self) -> None:
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        try:
            await self._start()
            # A slice at a time, so that a backlog (a burst, a database back from an
            # outage) is chained batch by batch beside the writes, not all before them.
            # Everything queued when the flush starts is written by it; what is emitted
            # meanwhile joins for at most PIPELINE_ROUNDS more slices.
            slice_, backlog = self._batch_size * 4, len(self._queue)
            if self._queue:
                await self._link_queue(slice_)
            self.written += await self._drain_spool()
            rounds = 0
            while self._pending:
                batch = list(islice(self._pending, slice_))
                # Pipelined: the next slice of the queue is chained (worker thread) while
                # this batch is written; it joins ``_pending`` behind the batch, in order.
                rounds += 1
                backlog -= slice_
                linking = asyncio.ensure_future(self._link_queue(slice_)) \
                    if self._queue and (backlog > 0 or rounds <= PIPELINE_ROUNDS) else None
                try:
                    await self._write(batch)
                finally:
                    if linking is not None:
                        await linking
                for _ in batch:
                    self._pending.popleft()
                self.written += len(batch)
            await self._checkpoint(force=False)
        except OSError as exc:
            self._unwell(exc)
            if self._queue:  # chained now, so that the overflow can go to the spool
                await self._link_queue()
            await self._spill(len(self) - self._memory_limit)
            raise
        if self.failing:
            log.warning("the audit log takes writes again; every kept record is written "
                        "(failing since %s)", self.failing_since)
            self.failing_since = self.last_error = None

    async def _checkpoint(self, *, force: bool) -> None:
        """A signed checkpoint of the head, when due (or ``force``: at shutdown); only
        called once every destination holds every chained record."""
        chain, checkpointer = self._chain, self.checkpointer
        if chain is None or checkpointer is None or chain.seq <= checkpointer.last_seq:
            return
        if force or checkpointer.due(chain.seq):
            await checkpointer.write(self.node, chain.seq, chain.head, self._clock())

    async def _write(self, rows: list[ChainRow]) -> None:
        """Give each destination the records of ``rows`` it does not hold yet; one that
        fails does not keep the others from writing. Raises the first failure."""
        failure: OSError | None = None
        for sink in self._sinks:
            try:
                if sink.done is None:
                    head = await sink.head()
                    sink.done = head[0] if head else 0
                done = sink.done
                todo = rows if rows[0]["seq"] > done or rows[0]["node"] != self.node else \
                    [r for r in rows if r["seq"] > done or r["node"] != self.node]
                if todo:
                    await sink.write(todo)
                    sink.done = max(done, todo[-1]["seq"])
            except OSError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    async def _drain_spool(self) -> int:
        spool, written = self._spool, 0
        if spool is None:
            return 0
        while block := await asyncio.to_thread(spool.read_block):
            rows, lines = [], block.split(b"\n")[:-1]
            for line in lines:
                if (row := decode_line(line)) is not None:
                    rows.append(row)
                else:
                    log.error("the audit spool %s holds a line that is not a chained record "
                              "(a crash while spooling?); skipped: %r", spool.path, line[:200])
            if rows:
                await self._write(rows)
            await asyncio.to_thread(spool.consumed, len(block), len(lines))
            written += len(rows)
        return written

    def _unwell(self, exc: OSError) -> None:
        error = str(exc) if isinstance(exc, AuditSinkError) else \
            f"cannot write the audit log: {exc.strerror or exc}"
        if error != self.last_error:  # once per kind of failure, not once per retry
            log.error("%s; keeping every record (memory, then spool %s) and retrying",
                      error, self._spool.path if self._spool else "none")
        if self.failing_since is None:
            self.failing_since = self._clock()
        self.last_error = error

    async def _spill(self, count: int) -> None:
        """Move the ``count`` oldest chained records to the spool; keep them in memory
        if the spool can't be written either."""
        count = min(count, len(self._pending))
        if count <= 0 or self._spool is None:
            return
        rows = [self._pending.popleft() for _ in range(count)]
        spool = self._spool
        try:
            await asyncio.to_thread(spool.append, encode_lines(rows), len(rows))
        except OSError as exc:
            self._pending.extendleft(reversed(rows))
            log.error("cannot write the audit spool %s either (%s): %d record(s) held in "
                      "memory", spool.path, exc.strerror or exc, len(self))

    async def run(self) -> None:
        """Flush every ``flush_interval``; after a failure retry every ``retry_interval``.
        Survives any exception: an unexpected one is logged and retried like a disk error."""
        while True:
            # ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` returns
            # the wake-up's result when a cancel lands in the same loop turn, swallowing
            # the cancel, and the shutdown that waits for this task waits for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                if len(self._queue) >= self._batch_size:  # a backlog: go on at once
                    self._wake.set()
            except OSError:
                await asyncio.sleep(self._retry_interval)
            except Exception:
                log.exception("the audit writer failed unexpectedly; retrying")
                await asyncio.sleep(self._retry_interval)

    async def close(self) -> None:
        """Write everything; what the destinations won't take goes to the spool."""
        await asyncio.gather(*self._inflight, return_exceptions=True)
        try:
            await self.flush()
        except Exception:  # whatever it was, keep the records
            async with self._lock:
                if self._chain is not None and self._queue:
                    await self._link_queue()
                await self._spill(len(self._pending))
            if len(self):
                log.critical("%d audit record(s) could be written neither to the audit log "
                             "nor to the spool; they are lost with this process", len(self))
        else:
            try:
                async with self._lock:
                    await self._checkpoint(force=True)
            except Exception as exc:  # the records are safe: say it, go on
                log.error("no checkpoint at shutdown: %s", exc)
        for sink in self._sinks:
            if isinstance(sink, FileSink):
                await sink.close()

    def __len__(self) -> int:
        return len(self._queue) + len(self._pending)
