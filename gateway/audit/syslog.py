"""Forwarding the audit trail to a SIEM as RFC 5424 syslog messages (``audit.syslog``).

Every chained record and every signed checkpoint becomes one message::

    <PRI>1 TIMESTAMP HOSTNAME certgate PROCID MSGID [certgate@32473 node=".." seq=".."
    hash=".."] BOM{"node":..,"seq":..,..,"prev_hash":..,"hash":..}

- PRI is facility * 8 + severity: ``audit.syslog_facility`` (``authpriv`` by default,
  or ``auth``, ``local0`` … ``local7``); severity 4 (warning) for a ``deny``, 5
  (notice) for a checkpoint, 6 (informational) for everything else;
- TIMESTAMP is the record's ``at`` (the checkpoint's for a checkpoint); MSGID is the
  record's type (``access``, ``login`` …) or ``checkpoint``;
- the structured data element ``certgate@32473`` (32473 is the enterprise number
  RFC 5612 reserves for documentation) repeats node, seq and hash so a SIEM can
  index them without parsing the body;
- MSG is the UTF-8 BOM and the whole record (hashes included) or checkpoint
  (signature included) as one JSON object, so a copy kept by the SIEM can be
  checked with ``audit.pub`` like the database.

Transports: ``udp://host:port`` (one datagram per message, RFC 5426),
``tcp://host:port`` (octet-counting framing, RFC 6587 3.4.1: ``LEN SP MSG``) and
``unix:///dev/log`` (one datagram per message on the local syslog socket).

The forward is a copy, not a destination the writer waits for: the database (and
spool) keep every record whatever the SIEM does. Messages wait in a bounded
buffer (``BUFFER`` messages); while the receiver is down the forwarder retries
with backoff, says so in ``/readyz`` and the log (``gateway.ops.supervise``), and
when the buffer is full drops the *oldest* unsent messages, counting them in
``dropped`` (a metric) with one loud log line per outage. A down SIEM therefore
holds at most ``BUFFER`` messages in memory and never slows requests or the
database. Formatting and sending run off the request path; sockets are non-blocking.

Owns the message format, the transports and the buffer. Must not chain, number or
store records (the writer does), and never raises into the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from gateway.audit.chain import FIELDS, ChainRow
from gateway.audit.checkpoint import Checkpoint

log = logging.getLogger("certgate.audit")

BUFFER = 10_000  # messages held while the receiver is down; beyond, the oldest go
FACILITIES = {"auth": 4, "authpriv": 10, **{f"local{n}": 16 + n for n in range(8)}}
SD_ID = "certgate@32473"
BOM = "\ufeff"
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
Transport = Literal["udp", "tcp", "unix"]


@dataclass(frozen=True)
class SyslogTarget:
    transport: Transport
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.transport == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


def parse_syslog_url(text: str) -> SyslogTarget:
    """``udp://host:514``, ``tcp://host:601`` or ``unix:///dev/log``; ``ValueError``
    with a sentence for a person otherwise."""
    shape = "udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH (e.g. udp://siem.example:514)"
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"must be a syslog address: {shape}")
    try:
        url = urlsplit(text.strip())
        port = url.port
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a syslog address ({exc}); use {shape}") from None
    if url.scheme == "unix":
        if url.netloc or not url.path.startswith("/") or url.query or url.fragment:
            raise ValueError(f"'{text}' is not a local syslog socket; write it with three "
                             "slashes and an absolute path: unix:///dev/log")
        return SyslogTarget("unix", path=url.path)
    if url.scheme not in ("udp", "tcp"):
        raise ValueError(f"'{text}' has no syslog transport certgate knows (udp, tcp, "
                         f"unix); use {shape}")
    if not url.hostname or (url.path not in ("", "/")) or url.query or url.fragment:
        raise ValueError(f"'{text}' must name only a host and a port; use {shape}")
    if port is None or port == 0:
        raise ValueError(f"'{text}' names no port; syslog listens on 514 (udp) or 601 "
                         "(tcp) by convention, so write it out, e.g. "
                         f"{url.scheme}://{url.hostname}:{514 if url.scheme == 'udp' else 601}")
    return SyslogTarget(url.scheme, host=url.hostname, port=port)  # type: ignore[arg-type]


def _printable(text: str, limit: int) -> str:
    """RFC 5424 header fields: PRINTUSASCII (33-126) only, at most ``limit``, or ``-``."""
    clean = "".join(c if 33 <= ord(c) <= 126 else "_" for c in text)[:limit]
    return clean or "-"


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _message(facility: int, severity: int, at: str, hostname: str, procid: str,
             msgid: str, params: dict[str, Any], body: dict[str, Any]) -> bytes:
    sd = " ".join(f'{name}="{_sd_value(str(value))}"' for name, value in params.items())
    header = (f"<{facility * 8 + severity}>1 {at} {hostname} certgate {procid} "
              f"{_printable(msgid, 32)} [{SD_ID} {sd}] ")
    return (header + BOM + _ENCODE(body)).encode("utf-8")


def record_message(row: ChainRow, *, facility: int, hostname: str, procid: str) -> bytes:
    """One chained record as an RFC 5424 message (see the module docstring)."""
    severity = 4 if row.get("decision") == "deny" else 6
    return _message(facility, severity, str(row["at"]), hostname, procid,
                    str(row.get("type") or "access"),
                    {"node": row["node"], "seq": row["seq"], "hash": row["hash"]},
                    {name: row.get(name) for name in FIELDS})


def checkpoint_message(checkpoint: Checkpoint, *, facility: int, hostname: str,
                       procid: str) -> bytes:
    """One signed checkpoint as an RFC 5424 message (MSGID ``checkpoint``)."""
    return _message(facility, 5, str(checkpoint["at"]), hostname, procid, "checkpoint",
                    {"node": checkpoint["node"], "seq": checkpoint["seq"],
                     "hash": checkpoint["hash"]}, dict(checkpoint))


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet-counting framing: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(message), message)


class _Partial(Exception):
    def __init__(self, done: int, error: OSError) -> None:
        super().__init__(str(error))
        self.done = done
        self.error = error


class SyslogForwarder:
    """A bounded buffer of records and checkpoints, sent by ``send_round``.

    ``offer`` and ``offer_checkpoint`` are O(1) and never block; ``send_round`` (one
    round for ``gateway.ops.supervise.keep_running``) formats in a worker thread and
    sends everything buffered, raising ``OSError`` when the receiver can't be reached
    (the messages stay buffered for the next round)."""

    def __init__(self, target: SyslogTarget, *, facility: str = "authpriv",
                 buffer: int = BUFFER, hostname: str | None = None,
                 wait: float = 1.0) -> None:
        self.target = target
        self._facility = FACILITIES[facility]
        self._hostname = _printable(hostname or socket.gethostname(), 255)
        self._procid = str(os.getpid())
        self._items: deque[tuple[str, dict[str, Any]]] = deque()
        self._limit = buffer
        self._wait = wait
        self._wake = asyncio.Event()
        self._stream: asyncio.StreamWriter | None = None
        self._dgram: socket.socket | None = None
        self.sent = 0
        self.dropped = 0
        self._dropping = False  # one loud line per outage, not per message

    @property
    def queued(self) -> int:
        return len(self._items)

    def offer(self, rows: list[ChainRow]) -> None:
        self._items.extend(("record", row) for row in rows)
        self._trim()

    def offer_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._items.append(("checkpoint", checkpoint))
        self._trim()
        self._wake.set()

    def _trim(self) -> None:
        over = len(self._items) - self._limit
        if over <= 0:
            return
        for _ in range(over):
            self._items.popleft()
        self.dropped += over
        if not self._dropping:
            self._dropping = True
            log.error("the syslog receiver %s is not taking the audit trail fast enough: "
                      "its buffer of %d messages is full, so the oldest unsent messages are "
                      "dropped from the forward (the database keeps every record)",
                      self.target, self._limit)

    def _format(self, items: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
        make: dict[str, Callable[..., bytes]] = {"record": record_message,
                                                 "checkpoint": checkpoint_message}
        return [make[kind](item, facility=self._facility, hostname=self._hostname,
                           procid=self._procid) for kind, item in items]

    async def send_round(self) -> float:
        """Wait up to ``wait`` for messages, then send all buffered; 0 to come back at
        once. ``OSError`` (the messages stay) when the receiver is unreachable."""
        if not self._items:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._wait):
                    await self._wake.wait()
        self._wake.clear()
        while self._items:
            batch = [self._items.popleft() for _ in range(min(1000, len(self._items)))]
            messages = await asyncio.to_thread(self._format, batch)
            try:
                done = await self._send(messages)
            except _Partial as partial:
                self.sent += partial.done
                self._items.extendleft(reversed(batch[partial.done:]))  # oldest first again
                self._trim()
                await self._close()
                raise OSError(f"cannot forward the audit trail to syslog at {self.target}: "
                              f"{partial.error.strerror or partial.error}") from None
            self.sent += done
            if self._dropping:
                self._dropping = False
                log.warning("the syslog receiver %s takes the audit trail again; %d message(s) "
                            "were dropped from the forward so far", self.target, self.dropped)
        return 0.0

    async def _send(self, messages: list[bytes]) -> int:
        """Send ``messages``; ``_Partial`` says how many went before a failure."""
        target = self.target
        if target.transport == "tcp":
            try:
                if self._stream is None or self._stream.is_closing():
                    async with asyncio.timeout(10):
                        _, self._stream = await asyncio.open_connection(target.host,
                                                                        target.port)
                self._stream.write(b"".join(octet_counted(m) for m in messages))
                async with asyncio.timeout(30):
                    await self._stream.drain()
            except TimeoutError:
                raise _Partial(0, OSError("the receiver did not answer within the timeout")
                               ) from None
            except OSError as exc:
                # TCP syslog has no acknowledgement: what the kernel took before the
                # failure may or may not have arrived, so the whole batch is sent again
                # (a SIEM may see a record twice; node + seq tell duplicates apart).
                raise _Partial(0, exc) from None
            return len(messages)
        sent = 0
        try:
            if self._dgram is None:
                self._dgram = await self._datagram_socket()
            loop = asyncio.get_running_loop()
            for message in messages:  # one datagram each; a failure keeps the rest
                try:
                    await loop.sock_sendall(self._dgram, message)
                except OSError as exc:
                    if exc.errno != errno.EMSGSIZE:
                        raise
                    # Larger than a datagram can be: it would block every later one.
                    self.dropped += 1
                    log.error("an audit message of %d bytes is too large for a datagram "
                              "to %s; not forwarded (use tcp:// for long records)",
                              len(message), self.target)
                sent += 1
        except OSError as exc:
            raise _Partial(sent, exc) from None
        return sent

    async def _datagram_socket(self) -> socket.socket:
        target = self.target
        if target.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            address: Any = target.path
        else:
            infos = await asyncio.get_running_loop().getaddrinfo(
                target.host, target.port, type=socket.SOCK_DGRAM)
            family, _, _, _, address = infos[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(address)  # a datagram connect only sets the peer: never blocks
        except OSError:
            sock.close()
            raise
        return sock

    async def _close(self) -> None:
        if self._dgram is not None:
            self._dgram.close()
            self._dgram = None
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()
            with contextlib.suppress(Exception):
                await stream.wait_closed()

    async def close(self) -> None:
        """Send what is buffered if the receiver takes it now (bounded), then close."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                while self._items:
                    await self.send_round()
        await self._close()
