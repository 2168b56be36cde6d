"""``certgate serve``'s arguments: a bad address is refused in plain words."""

from __future__ import annotations

import pytest

from gateway.cli.main import main


@pytest.mark.parametrize(("value", "words"), [
    ("nonsense", "'nonsense' is not an address of the form host:port or [v6]:port"),
    ("127.0.0.1:99999", "port 99999 is out of range (0-65535)"),
])
def test_a_bad_listen_address_is_refused_in_words(
        value: str, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--listen", value]) == 2
    err = capsys.readouterr().err
    assert f"Invalid value for '--listen': {words}" in err
    assert "pydantic" not in err
