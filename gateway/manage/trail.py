"""Admin changes in the audit trail: who (the actor) changed what, recorded by the caller.

The CLI runs apart from ``serve``, so it writes its records itself, through
``gateway.audit.direct``: on the chain node ``<config.node>.cli``, continuing from
the stored head, safe against a second CLI racing it. ``AdminTrail`` is the small
recorder a caller builds once per invocation with its actor (the CLI: the OS user;
the console: its signed-in user) and calls right after each change a use-case made;
all its records share one ``reference``. ``close`` signs a checkpoint of the chain
when the audit key can be read, as the gateway does at shutdown.

A record that can't be written must never pass silently: ``record`` raises
``AuditTrailError`` (a ``ManageError``, one sentence) unless the trail was built
with ``keep_going=True``, which collects the failures in ``problems`` so the CLI can
first show what was done (a .p12 password is shown once) and then exit non-zero.

``record_admin_event`` is the one-call form for anything else that must be recorded
(``audit.read`` by ``audit verify``, later ``audit search/export/report``).

Never records a password, a TOTP secret or code, a recovery code or a session id:
the helpers below take records, not secrets. Never prints or exits.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.direct import DirectChain, cli_node
from gateway.audit.events import os_user
from gateway.audit.keys import load_audit_key
from gateway.audit.record import AuditRecord
from gateway.config import Config
from gateway.manage.crl import CrlNote
from gateway.manage.errors import ManageError
from gateway.store.db import serial_hex
from gateway.store.records import CertRecord
from gateway.store.store import Store

log = logging.getLogger("certgate.audit")


class AuditTrailError(ManageError):
    """A change was made but its audit record could not be written."""


def os_actor() -> str | None:
    """The OS user running this process, with the person behind ``sudo`` when there
    is one (``root (sudo: alice)``); None when the uid has no name (a container)."""
    name = os_user()
    sudo = os.environ.get("SUDO_USER")
    if sudo and sudo != name:
        return f"{name or os.getuid()} (sudo: {sudo})"
    return name


def _now() -> datetime:
    return datetime.now(UTC)


class AdminTrail:
    def __init__(self, store: Store, config: Config, actor: str | None, *,
                 keep_going: bool = False) -> None:
        self._store = store
        self._chain = DirectChain(store, cli_node(config.node))
        self._config = config
        self.actor = actor
        self.reference = secrets.token_hex(6)
        self.keep_going = keep_going
        self.written = 0
        self.problems: list[str] = []

    @property
    def node(self) -> str:
        return self._chain.node

    async def record(self, type: str, reason: str, *, user: str | None = None,
                     serial: str | None = None, fingerprint: str | None = None,
                     detail: dict[str, Any] | None = None) -> None:
        """One admin change, written now (see the module docstring for failures)."""
        record = AuditRecord(
            reference=self.reference, at=_now(), decision="info", reason=reason, rule=None,
            app=None, user=user, serial=serial, fingerprint=fingerprint, method=None,
            host=None, path=None, source_ip=None, status=None, duration_ms=None, type=type,
            actor=self.actor, detail=detail)
        try:
            await self._chain.append([record])
        except Exception as exc:
            problem = f"the audit record {type} could not be written: {_cause(exc)}"
            if not self.keep_going:
                raise AuditTrailError(problem) from None
            self.problems.append(problem)
            return
        self.written += 1

    async def certificates(self, type: str, changed: Iterable[CertRecord], reason: str,
                           detail: dict[str, Any] | None = None) -> None:
        """One record per certificate: ``cert.issue``, ``cert.revoke`` …"""
        for cert in changed:
            await self.record(type, reason, user=cert.user, serial=serial_hex(cert.serial),
                              fingerprint=cert.fingerprint,
                              detail={"not_after": cert.not_after.isoformat(),
                                      "key_source": cert.key_source, **(detail or {})})

    async def crl(self, note: CrlNote) -> None:
        """``crl.sign`` when a CRL was published (its number); nothing otherwise."""
        if note.number is not None:
            await self.record("crl.sign", "signed", detail={"crl_number": note.number})

    async def close(self) -> None:
        """Sign a checkpoint of the chain's head when this trail wrote anything and the
        audit key can be read (else the next command that can read it covers these
        records too): into the table, and into the checkpoint file when it exists. A
        checkpoint that fails is a warning: the records stand."""
        if not self.written:
            return
        path = self._config.audit.key
        if not os.access(path, os.R_OK):
            return
        # Into the file only when the gateway already made it: created here by root,
        # it would be root's, and the gateway (its own user) could no longer append.
        file = self._config.audit.checkpoints
        try:
            checkpointer = Checkpointer(load_audit_key(path), database=self._store,
                                        path=file if file.exists() else None)
            await self._chain.checkpoint(checkpointer, _now())
        except Exception as exc:  # the key, the file, the table: the records stand
            log.warning("no checkpoint of the audit chain %s: %s", self.node, _cause(exc))


async def record_admin_event(store: Store, config: Config, *, type: str, actor: str | None,
                             reason: str, user: str | None = None, serial: str | None = None,
                             detail: dict[str, Any] | None = None) -> None:
    """Record one event of ``actor`` (``audit.read``, …) on the admin chain and sign a
    checkpoint after it; raises ``AuditTrailError`` when it can't be written."""
    trail = AdminTrail(store, config, actor)
    await trail.record(type, reason, user=user, serial=serial, detail=detail)
    await trail.close()


async def record_read(store: Store, config: Config, command: str,
                      detail: dict[str, Any]) -> str | None:
    """Record that the OS user read the trail (``audit.read``: ``search``, ``export``,
    ``report``, ``verify``) with the scope in ``detail``; the reason it could not be
    written, or None. The caller has already shown what was read and exits non-zero."""
    try:
        await record_admin_event(store, config, type="audit.read", actor=os_actor(),
                                 reason=command, detail={"command": command, **detail})
    except AuditTrailError as exc:
        return str(exc)
    return None


def _cause(exc: BaseException) -> str:
    inner: BaseException = exc
    while getattr(inner, "orig", None) is not None:
        inner = inner.orig  # type: ignore[attr-defined]
    text = str(inner).strip()
    return text.splitlines()[0].split("[SQL:")[0].strip() if text else type(inner).__name__
