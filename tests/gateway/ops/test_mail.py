"""``gateway.ops.mail`` against a real SMTP server on loopback (aiosmtpd): the message
as it arrives, header injection refused, signing in with the 0600 password file
(never logged), STARTTLS to a relay with a certificate of its own CA, and a relay
that is down, untrusted or lacks STARTTLS: logged, counted, never raised."""

from __future__ import annotations

import logging
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from prometheus_client import CollectorRegistry, Counter

from gateway.config.mail import MailConfig
from gateway.ops.mail import Letter, MailError, Postbox, build_message
from pki.ca import build_ca, issue_server_cert
from pki.keys import generate_key, key_to_pem
from tests.gateway.mailserver import running_mailserver

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
log = logging.getLogger("certgate.test.mail")


def relay(port: int, **extra: object) -> MailConfig:
    return MailConfig.model_validate({"host": "127.0.0.1", "port": port, "security": "none",
                                      "sender": "certgate@example.com", "timeout": "5s",
                                      **extra})


def postbox() -> tuple[Postbox, Counter]:
    counter = Counter("certgate_mail_total", "test", ["kind", "result"],
                      registry=CollectorRegistry())
    return Postbox(counter, log), counter


def count(counter: Counter, kind: str, result: str) -> float:
    return counter.labels(kind, result)._value.get()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_message_is_plain_utf8_text_with_date_and_message_id() -> None:
    letter = Letter("lost", ("it@example.com", "boss@example.com"), "Zertifikat gestoppt",
                    "Grüße: the certificate 0A1B was stopped.\n")
    message = build_message(relay(25), letter, NOW)
    assert message["From"] == "certgate@example.com"
    assert message["To"] == "it@example.com, boss@example.com"
    assert message["Date"] == "Wed, 04 Mar 2026 05:06:07 +0000"
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content() == "Grüße: the certificate 0A1B was stopped.\n"


@pytest.mark.parametrize(("to", "subject", "words"), [
    (("it@example.com\r\nBcc: spy@evil.test",), "hello", "not one plain e-mail address"),
    (("it@example.com",), "hello\r\nBcc: spy@evil.test", "subject of the mail would contain"),
    (("it@example.com",), "hello\nX-Evil: 1", "subject of the mail would contain"),
    (("Alice <it@example.com>",), "hello", "not one plain e-mail address"),
    ((), "hello", "no recipient"),
])
def test_a_header_from_data_cannot_add_a_header(to: tuple[str, ...], subject: str,
                                                words: str) -> None:
    with pytest.raises(MailError, match=words):
        build_message(relay(25), Letter("download", to, subject, "body"), NOW)


async def test_a_mail_arrives_as_built(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="certgate")
    box, counter = postbox()
    async with running_mailserver() as server:
        task = box.send(relay(server.port), Letter("lost", ("it@example.com",), "Stopped",
                                                   "The certificate 0A1B was stopped.\n"),
                        NOW, "about a test")
        arrived = await server.next()
        assert await task is None
    assert arrived.recipients == ["it@example.com"]
    assert arrived.sender == "certgate@example.com"
    assert arrived.message["Subject"] == "Stopped"
    assert arrived.body == "The certificate 0A1B was stopped.\n"
    assert count(counter, "lost", "sent") == 1 and count(counter, "lost", "failed") == 0
    assert any("sent the e-mail about a test" in r.getMessage() for r in caplog.records)


async def test_signing_in_with_the_password_file_never_logs_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = tmp_path / "smtp.pw"
    secret.write_text("relay-secret\n# the second line is not part of it\n")
    secret.chmod(0o600)
    box, counter = postbox()
    async with running_mailserver(auth=True) as server:
        mail = relay(server.port, username="certgate", password_file=str(secret))
        assert await box.send(mail, Letter("download", ("bob@example.com",), "Hi", "link\n"),
                              NOW, "to bob") is None
        assert (await server.next()).recipients == ["bob@example.com"]
        assert server.logins == [("certgate", "relay-secret")]

        # A wrong password: refused by the relay, logged without the password.
        secret.write_text("wrong-secret\n")
        problem = await box.send(mail, Letter("download", ("bob@example.com",), "Hi", "x\n"),
                                 NOW, "to bob again")
        assert problem is not None and "refused the user name or password" in problem
        assert "535" in problem
        # A password file others may read: not even tried.
        secret.chmod(0o644)
        problem = await box.send(mail, Letter("download", ("bob@example.com",), "Hi", "x\n"),
                                 NOW, "to bob once more")
        assert problem is not None and "chmod" in problem
    assert (count(counter, "download", "sent"), count(counter, "download", "failed")) == (1, 2)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "relay-secret" not in logged and "wrong-secret" not in logged
    assert "the e-mail to bob again was not sent" in logged


async def test_a_relay_that_is_down_is_logged_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="certgate")
    box, counter = postbox()
    port = free_port()
    problem = await box.send(relay(port), Letter("lost", ("it@example.com",), "S", "b\n"),
                             NOW, "about nothing")
    assert problem == f"the mail relay 127.0.0.1:{port} refused the connection (is it " \
        "running, is the port right?)"
    assert count(counter, "lost", "failed") == 1 and count(counter, "lost", "sent") == 0
    assert any(r.getMessage() == f"the e-mail about nothing was not sent: {problem}"
               for r in caplog.records)


async def test_starttls_never_falls_back_to_clear_text() -> None:
    # security: starttls (the default) to a relay that does not offer STARTTLS.
    box, counter = postbox()
    async with running_mailserver() as server:
        mail = MailConfig.model_validate({"host": "127.0.0.1", "port": server.port,
                                          "sender": "certgate@example.com", "timeout": "5s"})
        problem = await box.send(mail, Letter("lost", ("it@example.com",), "S", "secret\n"),
                                 NOW, "over starttls")
        assert problem is not None and "does not offer STARTTLS" in problem
        assert server.inbox.empty()
    assert count(counter, "lost", "failed") == 1


async def test_close_waits_for_mails_in_flight() -> None:
    box, counter = postbox()
    async with running_mailserver() as server:
        box.send(relay(server.port), Letter("lost", ("it@example.com",), "S", "b\n"), NOW, "x")
        await box.close()
        assert not server.inbox.empty()
    assert count(counter, "lost", "sent") == 1


@pytest.fixture(scope="module")
def relay_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A relay certificate for 127.0.0.1 from a CA of our own ``pki``; its root's PEM."""
    folder = tmp_path_factory.mktemp("relay")
    now = datetime.now(UTC)
    ca, _ = build_ca("Mail Test", now=now)
    key = generate_key()
    cert = issue_server_cert(ca, key.public_key(), ["127.0.0.1"], days=2, now=now)
    (folder / "cert.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM)
                                               for c in (cert, ca.issuing_cert)))
    (folder / "key.pem").write_bytes(key_to_pem(key, None))
    (folder / "root.pem").write_bytes(ca.root_cert.public_bytes(Encoding.PEM))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context, folder / "root.pem"


async def test_starttls_with_the_relays_own_ca_and_a_password(
        relay_tls: tuple[ssl.SSLContext, Path], tmp_path: Path) -> None:
    context, root = relay_tls
    secret = tmp_path / "smtp.pw"
    secret.write_text("relay-secret\n")
    secret.chmod(0o600)
    box, counter = postbox()
    async with running_mailserver(tls=context, auth=True) as server:
        mail = MailConfig.model_validate({
            "host": "127.0.0.1", "port": server.port, "sender": "certgate@example.com",
            "username": "certgate", "password_file": str(secret), "ca_file": str(root),
            "timeout": "5s"})
        assert mail.security == "starttls"
        assert await box.send(mail, Letter("lost", ("it@example.com",), "S", "b\n"), NOW,
                              "over starttls") is None
        assert (await server.next()).recipients == ["it@example.com"]
        assert server.logins == [("certgate", "relay-secret")]
        # Without the relay's CA its certificate is not trusted: nothing is said.
        problem = await box.send(mail.model_copy(update={"ca_file": None}),
                                 Letter("lost", ("it@example.com",), "S", "b\n"), NOW, "x")
        assert problem is not None and "is not trusted" in problem
        assert server.logins == [("certgate", "relay-secret")] and server.inbox.empty()
    assert (count(counter, "lost", "sent"), count(counter, "lost", "failed")) == (1, 1)
