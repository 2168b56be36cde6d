"""How this process's audit trail is assembled from the config: the writer with its
destinations, signed checkpoints and optional syslog forward; the retention work; the
``gateway.start``/``gateway.stop`` records.

Builds objects only: ``gateway.runtime`` starts, supervises and stops them. Must not
run a query or touch the network itself.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import logging
import secrets
from datetime import UTC, datetime
from functools import partial

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.keys import load_audit_key
from gateway.audit.record import AuditRecord
from gateway.audit.retention import Retention
from gateway.audit.sinks import DatabaseSink
from gateway.audit.syslog import SyslogForwarder, parse_syslog_url
from gateway.audit.writer import AuditWriter
from gateway.config import Config
from gateway.store.store import Store

log = logging.getLogger("certgate")
utc_now = partial(datetime.now, UTC)


def lifecycle_record(type_: str, config: Config, node: str, at: datetime) -> AuditRecord:
    """``gateway.start`` / ``gateway.stop``: which node, which version, which OS user."""
    return AuditRecord.event(
        type_, at, reference=secrets.token_hex(6), reason=type_.split(".")[1],
        actor=_os_user(), detail={"node": node, "version": _version(), "config": str(config.file),
                                  "apps": len(config.apps)})


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return None


def _version() -> str:
    try:
        return importlib.metadata.version("certgate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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
