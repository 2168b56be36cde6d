"""Sending certgate's few e-mails through the ``mail:`` relay, off the event loop.

``build_message`` makes one plain-text UTF-8 message (From, To, Subject, Date,
Message-ID) and refuses a header value with a line break or a recipient that is not
one plain address (values come from data: a user's stored e-mail, a user name), so
nothing can add a header or a recipient. ``Postbox.send`` delivers it with the
standard library's ``smtplib`` in a worker thread as a background task: it never
holds up a page, every failure is one WARNING log line naming the relay and the
reason, and each message counts in ``certgate_mail_total{kind,result}``. The relay's
password is read from ``mail.password_file`` (0600) at each send, so a reload or a
new password needs no restart.

Must not log the relay password or a mail's body (a download link is a secret).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal

from prometheus_client import Counter

from gateway.config.mail import MailConfig, is_address
from pki.keys import read_secret_line

Kind = Literal["lost", "download"]


class MailError(ValueError):
    """A message that must not be sent as asked (a header value with a line break)."""


@dataclass(frozen=True)
class Letter:
    """What to say, to whom: the caller's words, checked by ``build_message``."""

    kind: Kind
    to: tuple[str, ...]
    subject: str
    body: str


def _header(name: str, value: str) -> str:
    if any(c in value for c in "\r\n\x00") or len(value) > 900:
        raise MailError(f"the {name} of the mail would contain a line break or is too long")
    return value


def build_message(mail: MailConfig, letter: Letter, now: datetime) -> EmailMessage:
    """The message as it goes out; ``MailError`` for a bad recipient or header value."""
    if not letter.to:
        raise MailError("the mail has no recipient")
    for address in letter.to:
        if not is_address(address):
            raise MailError(f"{address[:80]!r} is not one plain e-mail address")
    message = EmailMessage()
    message["From"] = _header("sender", mail.sender)
    message["To"] = ", ".join(letter.to)
    message["Subject"] = _header("subject", letter.subject)
    message["Date"] = format_datetime(now)
    # The sender's domain, not socket.getfqdn(): no DNS lookup for a message id.
    message["Message-ID"] = make_msgid("certgate", domain=mail.sender.rsplit("@", 1)[1])
    message.set_content(letter.body, charset="utf-8")
    return message


def deliver(mail: MailConfig, message: EmailMessage) -> None:
    """Hand ``message`` to the relay (blocking: call it in a worker thread)."""
    password = read_secret_line(mail.password_file, private=True) \
        if mail.password_file is not None else None
    timeout = mail.timeout.total_seconds()
    context = ssl.create_default_context(
        cafile=str(mail.ca_file) if mail.ca_file is not None else None)
    smtp = smtplib.SMTP_SSL(mail.host, mail.port, timeout=timeout, context=context) \
        if mail.security == "tls" else smtplib.SMTP(mail.host, mail.port, timeout=timeout)
    with smtp:
        if mail.security == "starttls":
            smtp.starttls(context=context)  # SMTPNotSupportedError: never falls back to clear
        if mail.username is not None and password is not None:
            smtp.login(mail.username, password)
        smtp.send_message(message)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def plain_reason(mail: MailConfig, exc: BaseException) -> str:
    """Why a mail was not sent, in words an admin can act on."""
    relay = f"the mail relay {mail.host}:{mail.port}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (f"{relay} refused the user name or password (mail.username, "
                f"mail.password_file): {exc.smtp_code} {_text(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{relay} does not offer STARTTLS, and mail is never sent in the clear"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"{relay} refused the address {', '.join(exc.recipients)}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the certificate of {relay} is not trusted: {exc.verify_message}"
    if isinstance(exc, ConnectionRefusedError):
        return f"{relay} refused the connection (is it running, is the port right?)"
    if isinstance(exc, TimeoutError):
        return f"{relay} did not answer within {mail.timeout.total_seconds():g} s"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{relay} answered {exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{relay}: {exc or type(exc).__name__}"


class Postbox:
    """This process's mails in flight, so that a stop can wait for them."""

    def __init__(self, counter: Counter, log: logging.Logger) -> None:
        self._counter = counter
        self._log = log
        self._tasks: set[asyncio.Task[str | None]] = set()

    def send(self, mail: MailConfig, letter: Letter, now: datetime,
             about: str) -> asyncio.Task[str | None]:
        """Send in the background; the task's result is None once sent, else the reason
        it was not (already logged and counted). ``about`` names the mail in the log."""
        task = asyncio.create_task(self._send(mail, letter, now, about))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, mail: MailConfig, letter: Letter, now: datetime,
                    about: str) -> str | None:
        try:
            message = build_message(mail, letter, now)
            await asyncio.to_thread(deliver, mail, message)
        except asyncio.CancelledError:
            self._counter.labels(letter.kind, "failed").inc()
            raise
        except Exception as exc:  # a mail must never take anything down
            self._counter.labels(letter.kind, "failed").inc()
            reason = plain_reason(mail, exc)
            self._log.warning("the e-mail %s was not sent: %s", about, reason)
            return reason
        self._counter.labels(letter.kind, "sent").inc()
        self._log.info("mail relay %s:%d: sent the e-mail %s", mail.host, mail.port, about)
        return None

    async def close(self) -> None:
        """Give mails in flight a moment, then cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
