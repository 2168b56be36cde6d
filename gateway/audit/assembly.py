"""How this process's audit trail is assembled from the config: the writer with its
destinations, signed checkpoints and optional syslog forward; the retention work; the
``gateway.start``/``gateway.stop`` records.

Builds objects only: ``gateway.runtime`` starts, supervises and stops them. Must not
run a query or touch the network itself.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.keys import load_audit_key
from gateway.audit.retention import INTERVAL as RETENTION_INTERVAL
from gateway.audit.retention import Retention
from gateway.audit.sinks import DatabaseSink
from gateway.audit.syslog import SyslogForwarder, parse_syslog_url
from gateway.audit.writer import AuditWriter
from gateway.config import Config
from gateway.ops.supervise import TaskHealth, keep_running
from gateway.store.store import Store

log = logging.getLogger("certgate")
utc_now = partial(datetime.now, UTC)


def build_audit_writer(config: Config, store: Store, worker: int = 0) -> AuditWriter:
    """The audit writer of this process: the database, plus the JSON-lines file when
    ``audit.path`` is set, and signed checkpoints when the audit key exists (an install
    from before the key: a warning until `certgate init` adds it). Forked workers each
    keep their own chain (``node-wN``) and spool."""
    node = config.node if worker == 0 else f"{config.node}-w{worker}"
    spool = "audit-spool.jsonl" if worker == 0 else f"audit-spool-w{worker}.jsonl"
    audit = config.audit
    checkpointer = None
    target = None if audit.syslog is None else parse_syslog_url(audit.syslog)
    syslog = None if target is None else SyslogForwarder(target, facility=audit.syslog_facility)
    if audit.key.exists():
        checkpointer = Checkpointer(load_audit_key(audit.key), path=audit.checkpoints,
                                    database=store, every=audit.checkpoint_every,
                                    interval=audit.checkpoint_interval.total_seconds(),
                                    syslog=syslog)
    else:
        log.warning("no audit key at %s: audit checkpoints are not signed, so a deleted "
                    "tail of the audit log would go unnoticed; run `certgate init` with this "
                    "config to add the key", audit.key)
    return AuditWriter(audit.path, node=node, sinks=[DatabaseSink(store, node)],
                       spool_path=config.data_dir / spool, checkpointer=checkpointer,
                       memory_limit=audit.memory_limit, syslog=syslog)


def build_retention(config: Config, store: Store, writer: AuditWriter) -> Retention | None:
    """The retention task's work when ``audit.retention`` is set and there is an audit
    key to check checkpoints with (without one nothing is deleted: an ERROR says so)."""
    audit = config.audit
    if audit.retention is None:
        return None
    if writer.checkpointer is None:
        log.error("audit.retention is set but there is no audit key at %s: records are "
                  "only deleted behind a signed checkpoint, so none will be; run "
                  "`certgate init` with this config to add the key", audit.key)
        return None
    return Retention(store, node=writer.node, keep=audit.retention,
                     public_key=load_audit_key(audit.key).public_key(),
                     checkpoint_file=audit.checkpoints, emit=writer.emit, clock=utc_now)


async def forward_to_syslog(forwarder: SyslogForwarder, tasks: list[TaskHealth],
                            log: logging.Logger) -> None:
    """Send the audit trail to the SIEM; a dead receiver is a failing task in
    ``/readyz`` and one ERROR line, never a wait for the writer or requests."""
    tasks.append(health := TaskHealth(
        "audit syslog forward", stuck_after=120.0,
        while_failing=f"the SIEM at {forwarder.target} gets no audit records; the "
                      "database still gets every one"))
    await keep_running(health, forwarder.send_round, interval=0.5, max_backoff=30.0,
                       round_timeout=60.0, log=log)


async def keep_retention(retention: Retention, tasks: list[TaskHealth],
                         log: logging.Logger) -> None:
    """Delete audit records older than ``audit.retention``, hourly (first round at
    start), only behind a signed checkpoint (``gateway.audit.retention``)."""
    tasks.append(health := TaskHealth(
        "audit retention", stuck_after=3 * RETENTION_INTERVAL + 600,
        while_failing="old audit records are kept until it works again"))
    await keep_running(health, retention.round, interval=RETENTION_INTERVAL,
                       max_backoff=RETENTION_INTERVAL, round_timeout=600.0, log=log)
