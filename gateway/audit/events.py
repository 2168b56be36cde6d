"""The records a gateway writes about itself rather than about a request: start and
stop (``gateway.start``, ``gateway.stop``) and a config reload (``policy.reload``),
with the SHA-256 of the config file, where the apps and their policies live.

Builds ``AuditRecord``s only: emitting them is the runtime's job. Reads the config
file to hash it (once per start or reload, never per request).
"""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import secrets
from datetime import datetime
from pathlib import Path

from gateway.audit.record import AuditRecord
from gateway.config import Config


def lifecycle_record(type_: str, config: Config, node: str, at: datetime) -> AuditRecord:
    """``gateway.start`` / ``gateway.stop``: which node, which version, which OS user."""
    return AuditRecord.event(
        type_, at, reference=secrets.token_hex(6), reason=type_.split(".")[1],
        actor=os_user(), detail={"node": node, "version": _version(), "config": str(config.file),
                                  "apps": len(config.apps),
                                  # the policy it starts with (at stop the file may differ)
                                  **({"sha256": policy_digest(config.file)}
                                     if type_ == "gateway.start" else {})})


def policy_digest(path: Path) -> str | None:
    """SHA-256 of the config file (the apps and their policies live in it); None when
    it can't be read (the reload is refused for that reason anyway)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def reload_record(at: datetime, path: Path, digest: str | None, config: Config | None,
                  error: Exception | None) -> AuditRecord:
    """``policy.reload``: applied (how many apps) or refused (the first line of why)."""
    detail: dict[str, object] = {"file": str(path), "sha256": digest}
    if config is not None:
        detail["apps"] = len(config.apps)
    if error is not None:
        detail["error"] = (str(error).strip().splitlines() or [type(error).__name__])[0][:500]
    return AuditRecord.event("policy.reload", at, reference=secrets.token_hex(6),
                             reason="applied" if error is None else "refused",
                             decision="allow" if error is None else "deny",
                             detail=detail)  # the actor sent a signal: unknown here


def os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return None


def _version() -> str:
    try:
        return importlib.metadata.version("certgate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
