"""A real SMTP server on loopback for the tests (aiosmtpd), on an ephemeral port.

``running_mailserver()`` serves on the test's own event loop (certgate sends with
``smtplib`` in a worker thread, so the two never wait on each other) and collects
what arrives as parsed messages with their envelope recipients.
"""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Arrived:
    recipients: list[str]
    sender: str
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")  # SMTP lines end in CRLF


@dataclass
class MailServer:
    port: int
    inbox: asyncio.Queue[Arrived] = field(default_factory=asyncio.Queue)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session,  # aiosmtpd calls it so
                          envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        await self.inbox.put(Arrived(list(envelope.rcpt_tos), str(envelope.mail_from), parsed))
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                     mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"relay-secret", handled=False)

    async def next(self, timeout: float = 10) -> Arrived:
        return await asyncio.wait_for(self.inbox.get(), timeout)


@asynccontextmanager
async def running_mailserver(*, tls: ssl.SSLContext | None = None,
                             auth: bool = False) -> AsyncIterator[MailServer]:
    """An SMTP server on 127.0.0.1:<free port>; with ``tls``, STARTTLS is required."""
    box = MailServer(port=0)

    def protocol() -> SMTP:
        with warnings.catch_warnings():  # AUTH without TLS: on loopback, for the test
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(box, hostname="mail.test", tls_context=tls,
                        require_starttls=tls is not None,
                        auth_required=auth, auth_require_tls=tls is not None,
                        authenticator=box.authenticate if auth else None)

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()
