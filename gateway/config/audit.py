"""The ``audit:`` section of the config: where records, checkpoints and their key go,
what happens when the log can't be written, the SIEM copy and retention.

Pure validation (pydantic); must not open files or sockets.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.config.values import ConfigPath, Duration, Retention, SyslogAddress


class AuditConfig(BaseModel):
    """The audit trail: records go to the database; ``path`` adds a JSON-lines copy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: ConfigPath | None = None
    # What to do while no record can reach the audit log: keep serving (records are
    # kept in memory and the spool, /readyz says degraded) or refuse every request.
    on_failure: Literal["keep-serving", "deny"] = "keep-serving"
    key: ConfigPath  # the Ed25519 checkpoint key; default <data_dir>/audit.key (+ audit.pub)
    checkpoints: ConfigPath  # default <data_dir>/audit/checkpoints.jsonl
    checkpoint_every: int = Field(default=1000, ge=1, le=10_000_000)  # records
    checkpoint_interval: Duration = timedelta(seconds=60)
    # Records held in memory while the database can't be written; beyond, the spool.
    memory_limit: int = Field(default=100_000, ge=1000, le=10_000_000)
    syslog: SyslogAddress | None = None  # RFC 5424 copies for a SIEM (gateway.audit.syslog)
    syslog_facility: Literal["auth", "authpriv", "local0", "local1", "local2", "local3",
                             "local4", "local5", "local6", "local7"] = "authpriv"
    # Delete records older than this, only up to a signed checkpoint; absent: keep forever.
    retention: Retention | None = None

    @property
    def public_key(self) -> Path:
        return self.key.with_suffix(".pub")
