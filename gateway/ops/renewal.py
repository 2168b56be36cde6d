"""The gateway's own server certificate, renewed from its CA before it expires.

``ServerCertRenewer`` is a supervised background loop (``keep_running``). In the
primary process, once ``tls.renew_at`` of the certificate's lifetime has passed
(default two thirds), it issues a certificate for the same names and lifetime with a
new key from the online CA and writes both files in place, atomically each
(``gateway.manage.servers.renew_server_certificate``). It logs the renewal and
writes a ``server_cert.renew`` audit record.

In every process (forked workers too) it notices when ``tls.cert`` on disk is not
the one being served (renewed by the primary, or replaced by the admin) and makes
it the certificate of new handshakes through ``use``; open connections keep
theirs, so nothing is dropped. A half-written pair (key replaced, certificate not
yet) is retried a second later.

A certificate the CA did not issue (a public CA's) or ``tls.auto_renew: false`` is
never renewed here. When renewal is due but the CA key can't be unlocked, the loop
fails (and ``/readyz`` says so) with the reason, retrying, until it can.

Owns when to renew and the swap; must not decide how a certificate is built
(``pki``) nor touch the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import ssl
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography import x509

from gateway.audit.record import AuditRecord
from gateway.config import Config, TlsConfig
from gateway.http.tls import TlsFileError, build_server_context
from gateway.manage.ca import load_online_ca
from gateway.manage.servers import issued_by, read_leaf, renew_server_certificate
from gateway.ops.supervise import TaskHealth, keep_running
from pki.ca import load_ca_certificates
from pki.keys import PkiError

POLL_SECONDS = 60.0  # how soon a worker notices a certificate the primary renewed


def renewal_due(cert: x509.Certificate, fraction: float) -> datetime:
    """When ``fraction`` of the certificate's lifetime has passed."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * fraction


def renews_itself(cert: x509.Certificate, config: Config) -> str | None:
    """None when the gateway renews this certificate itself; else why not."""
    if not config.tls.auto_renew:
        return "tls.auto_renew is false"
    try:
        issuing = load_ca_certificates(config.pki.ca_dir)[1]
    except PkiError as exc:
        return f"the CA certificate can't be read ({exc})"
    if not issued_by(cert, issuing):
        return "it was not issued by this gateway's CA"
    return None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ServerCertRenewer:
    """One process's renewal loop; ``wake`` makes it look again at once."""

    def __init__(self, *, config: Callable[[], Config],
                 use: Callable[[ssl.SSLContext, TlsConfig], None],
                 emit: Callable[[AuditRecord], None], clock: Callable[[], datetime],
                 primary: bool, log: logging.Logger) -> None:
        self._config = config
        self._use = use
        self._emit = emit
        self._clock = clock
        self._primary = primary
        self._log = log
        self._said_not_ours = False
        self.wake = asyncio.Event()
        self.loaded: str | None = None  # SHA-256 of the tls.cert file being served
        self._started = False
        self.health = TaskHealth(
            "server certificate renewer", stuck_after=3 * POLL_SECONDS + 60,
            while_failing="the current server certificate stays in use until it expires")

    async def run(self) -> None:
        async def sleep(delay: float) -> None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.wake.wait()
            self.wake.clear()

        await keep_running(self.health, self.round, interval=POLL_SECONDS, max_backoff=600.0,
                           round_timeout=120.0, log=self._log, sleep=sleep)

    async def round(self) -> float:
        """Renew if due (primary only), serve what is on disk; seconds until the next look."""
        config = self._config()
        if not self._started:
            # The file the server started with, read in the first round: before it the
            # loop does not count as running, and /readyz would call a gateway that just
            # said ready degraded ("not running") while this read waited for a thread.
            self._started = True
            with contextlib.suppress(OSError):
                self.loaded = await asyncio.to_thread(_digest, config.tls.cert)
        wait = POLL_SECONDS
        if self._primary:
            wait = min(wait, await self._renew_if_due(config))
        digest = await asyncio.to_thread(_digest, config.tls.cert)
        if digest != self.loaded:
            try:
                context = await asyncio.to_thread(build_server_context, config.tls)
            except TlsFileError as exc:
                if "does not match" not in str(exc):
                    raise
                return 1.0  # the other file of the pair is still being written
            leaf = await asyncio.to_thread(read_leaf, config.tls.cert)
            self._use(context, config.tls)
            self.loaded = digest
            self._log.warning("new TLS handshakes now get the server certificate %s (serial "
                              "%X, valid until %s); open connections keep theirs",
                              config.tls.cert, leaf.serial_number, leaf.not_valid_after_utc)
        return max(1.0, wait)

    async def _renew_if_due(self, config: Config) -> float:
        leaf = await asyncio.to_thread(read_leaf, config.tls.cert)
        why_not = await asyncio.to_thread(renews_itself, leaf, config)
        if why_not is not None:
            if not self._said_not_ours:
                self._said_not_ours = True
                self._log.info("the server certificate %s is not renewed automatically: %s; "
                               "renew it before %s and reload (SIGHUP)", config.tls.cert,
                               why_not, leaf.not_valid_after_utc)
            return POLL_SECONDS
        now = self._clock()
        due = renewal_due(leaf, config.tls.renew_at)
        if now < due:
            return (due - now).total_seconds()
        ca = await asyncio.to_thread(load_online_ca, config, None, None)
        made = await asyncio.to_thread(renew_server_certificate, ca, config.tls.cert,
                                       config.tls.key, now=now)
        self._log.warning("renewed the server certificate %s: serial %X replaces %X, valid "
                          "until %s, for %s", config.tls.cert, made.serial, leaf.serial_number,
                          made.not_after, ", ".join(made.names))
        self._emit(AuditRecord.event(
            "server_cert.renew", now, reference=secrets.token_hex(6), reason="renewed",
            detail={"old_serial": f"{leaf.serial_number:X}", "serial": f"{made.serial:X}",
                    "not_after": made.not_after.isoformat(), "names": list(made.names),
                    "file": str(made.cert_path)}))
        return 1.0
