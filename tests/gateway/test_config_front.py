"""The ``proxy_protocol:`` section: the balancers' addresses parsed strictly, every error
naming file, line and key; ``allows`` matches IPv4-mapped peers of a dual-stack socket."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.runtime import restart_keys
from tests.gateway.test_config import BASE, write


def test_the_section_is_off_by_default_and_parsed_when_given(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, BASE)).proxy_protocol is None
    text = BASE + "proxy_protocol:\n  allowed_sources: [10.0.0.5, 10.0.1.0/24, '2001:db8::/64']\n"
    front = load_config(write(tmp_path, text)).proxy_protocol
    assert front is not None
    assert (front.listeners, front.header_timeout) == (("public",), timedelta(seconds=5))
    assert [str(n) for n in front.allowed_sources] == ["10.0.0.5/32", "10.0.1.0/24",
                                                       "2001:db8::/64"]
    for address, allowed in [("10.0.0.5", True), ("10.0.0.6", False), ("10.0.1.77", True),
                             ("::ffff:10.0.0.5", True), ("2001:db8::1", True),
                             ("2001:db9::1", False), ("", False), ("not-an-ip", False)]:
        assert front.allows(address) is allowed, address


@pytest.mark.parametrize(("section", "key", "message"), [
    ("  allowed_sources: []", "proxy_protocol.allowed_sources", "at least 1"),
    ("  allowed_sources: [10.0.0.1/8]", "proxy_protocol.allowed_sources",
     "'10.0.0.1/8' is not an address or network (10.0.0.1/8 has host bits set)"),
    ("  allowed_sources: [0.0.0.0/0]", "proxy_protocol.allowed_sources",
     "lets every address claim to speak for any client"),
    ("  allowed_sources: [lb.example.com]", "proxy_protocol.allowed_sources",
     "'lb.example.com' is not an address or network"),
    ("  allowed_sources: 10.0.0.5", "proxy_protocol.allowed_sources", "expected a list"),
    ("  allowed_sources: [10.0.0.5]\n  listeners: [admin]", "proxy_protocol.listeners[0]",
     "'public' or 'pki'"),
    ("  allowed_sources: [10.0.0.5]\n  listeners: [public, public]",
     "proxy_protocol.listeners", "listed twice"),
    ("  allowed_sources: [10.0.0.5]\n  header_timeout: 0s", "proxy_protocol.header_timeout",
     "greater than zero"),
    ("  allowed_sources: [10.0.0.5]\n  from: [10.0.0.6]", "proxy_protocol.from",
     "unknown key"),
    ("  allowed_sources: [10.0.0.5]\n  listeners: [public, pki]", "proxy_protocol.listeners",
     "names pki, but pki_listen is not set"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, section: str, key: str,
                                       message: str) -> None:
    path = write(tmp_path, BASE + "proxy_protocol:\n" + section + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    issue = info.value.issues[0]
    assert (issue.file, issue.key) == (str(path), key)
    assert issue.line > BASE.count("\n")
    assert message in issue.message


def test_changing_the_section_needs_a_restart(tmp_path: Path) -> None:
    old = load_config(write(tmp_path, BASE))
    new = load_config(write(tmp_path, BASE + "proxy_protocol: {allowed_sources: [10.0.0.5]}\n"))
    assert restart_keys(old, new) == ["proxy_protocol"]
