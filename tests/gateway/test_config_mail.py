"""The ``mail:`` section and ``lost.email_to``: defaults, the refusals in plain words
(clear text only to a relay on this machine, never a password in the YAML), and that
a reload may change them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.config.mail import is_address, is_loopback
from gateway.ops.filemodes import secret_files
from gateway.runtime import restart_keys
from tests.gateway.test_config import BASE, write

MAIL = "mail:\n  host: smtp.example.com\n  sender: certgate@example.com\n"


def test_off_by_default_and_the_defaults_when_given(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    assert config.mail is None and config.lost.email_to == ()
    config = load_config(write(tmp_path, BASE + MAIL + "lost:\n  email_to: [it@example.com]\n"))
    mail = config.mail
    assert mail is not None
    assert (mail.host, mail.port, mail.security, mail.username, mail.password_file) == \
        ("smtp.example.com", 587, "starttls", None, None)
    assert mail.timeout == timedelta(seconds=20)
    assert config.lost.email_to == ("it@example.com",)


def test_the_password_file_is_resolved_and_checked_at_start(tmp_path: Path) -> None:
    text = BASE + MAIL + "  username: certgate\n  password_file: smtp.pw\n"
    config = load_config(write(tmp_path, text))
    assert config.mail is not None and config.mail.password_file == tmp_path / "smtp.pw"
    assert tmp_path / "smtp.pw" in secret_files(config)  # a readable one stops the start


@pytest.mark.parametrize(("section", "key", "message"), [
    ("mail:\n  host: smtp.example.com\n  sender: certgate@example.com\n  security: none\n",
     "mail", "accepted only to a relay on this machine"),
    ("mail:\n  host: smtp.example.com\n  sender: 'IT <it@example.com>'\n", "mail.sender",
     "is not one plain e-mail address"),
    ("mail:\n  host: smtp.example.com\n  sender: \"it@example.com\\r\\nBcc: x@evil.test\"\n",
     "mail.sender", "is not one plain e-mail address"),
    ("mail:\n  host: smtp.example.com\n  sender: it@example.com\n  password: hunter2\n",
     "mail.password", "unknown key"),
    ("mail:\n  host: smtp.example.com\n  sender: it@example.com\n  username: me\n", "mail",
     "username and password_file go together"),
    ("mail:\n  host: 'smtp example'\n  sender: it@example.com\n", "mail",
     "is not a host name or IP address"),
    ("mail:\n  host: smtp.example.com\n  sender: it@example.com\n  port: 0\n", "mail.port",
     "greater than or equal to 1"),
    ("mail:\n  host: smtp.example.com\n  sender: it@example.com\n  security: ssl\n",
     "mail.security", "'starttls', 'tls' or 'none'"),
    ("mail:\n  host: localhost\n  sender: it@example.com\n  security: none\n"
     "  ca_file: relay-ca.pem\n", "mail", "security: none uses no TLS"),
    ("lost:\n  email_to: [it@example.com]\n", "lost.email_to",
     "there is no mail: section to send with"),
    (MAIL + "lost:\n  email_to: ['a@example.com, b@example.com']\n", "lost.email_to[0]",
     "is not one plain e-mail address"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, section: str, key: str,
                                       message: str) -> None:
    path = write(tmp_path, BASE + section)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    issue = info.value.issues[0]
    assert (issue.file, issue.key) == (str(path), key)
    assert issue.line > BASE.count("\n")
    assert message in issue.message


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.0.0.53", "::1", "[::1]"])
def test_clear_text_to_a_relay_on_this_machine(tmp_path: Path, host: str) -> None:
    assert is_loopback(host)
    text = BASE + f"mail:\n  host: '{host}'\n  port: 25\n  security: none\n" \
        "  sender: certgate@example.com\n"
    mail = load_config(write(tmp_path, text)).mail
    assert mail is not None and mail.security == "none"


@pytest.mark.parametrize(("value", "ok"), [
    ("alice@example.com", True), ("o'neil&co@example.com", True), ("a@b", True),
    ("Alice <alice@example.com>", False), ("alice@example.com\r\nBcc: x@y.z", False),
    ("alice@example.com,bob@example.com", False), ("@example.com", False),
    ("alice@", False), ("a" * 65 + "@example.com", False), ("alice@exa mple.com", False),
])
def test_one_plain_address(value: str, ok: bool) -> None:
    assert is_address(value) is ok


def test_a_reload_may_change_the_mail_settings(tmp_path: Path) -> None:
    old = load_config(write(tmp_path, BASE))
    new = load_config(write(tmp_path, BASE + MAIL + "lost:\n  email_to: [it@example.com]\n"))
    assert restart_keys(old, new) == []
