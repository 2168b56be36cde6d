"""Operational log lines: JSON for collectors, text for terminals."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gateway.ops.logs import configure_logging, wants_json


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_root() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_message_and_reference() -> None:
    out = io.StringIO()
    configure_logging("info", "auto", stream=out)  # not a terminal: JSON
    log = logging.getLogger("certgate.test")
    log.warning("upstream of %s refused: %s", "wiki", "Connexion refusée",
                extra={"reference": "R-7KQ2"})
    log.debug("not at info level")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("it failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "warning" and first["logger"] == "certgate.test"
    assert first["message"] == "upstream of wiki refused: Connexion refusée"
    assert first["reference"] == "R-7KQ2" and first["time"].endswith("Z")
    assert "reference" not in second
    assert "ValueError: boom" in second["exception"] and "Traceback" in second["exception"]


def test_text_on_a_terminal_and_when_asked() -> None:
    tty = Tty()
    configure_logging("warning", "auto", stream=tty)
    logging.getLogger("certgate").warning("hello")
    assert " WARNING certgate: hello" in tty.getvalue()
    assert not tty.getvalue().startswith("{")
    assert wants_json("json", Tty()) and not wants_json("text", io.StringIO())


def test_reconfiguring_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", stream=first)
    configure_logging("info", "json", stream=second)
    logging.getLogger("certgate").info("once")
    assert first.getvalue() == "" and len(second.getvalue().splitlines()) == 1
