"""The ``console:`` section: validated on load with file, line and key, and the console
added to the policies as a built-in app (group + second factor, its own max age)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.config.console import CONSOLE_APP, routed_apps
from tests.gateway.test_config import BASE, write

CONSOLE = "console: {host: Admin.Example.Test, group: it-admins, mfa_max_age: 3m}\n"


def test_the_console_is_a_built_in_app_with_mfa(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONSOLE + BASE))
    assert config.console is not None and config.console.host == "admin.example.test"
    policy = config.policy_set.apps["admin.example.test"]
    assert policy.name == CONSOLE_APP and policy.may_need_mfa
    assert [a.name for a in routed_apps(config)] == ["pbx", CONSOLE_APP]
    assert config.app(CONSOLE_APP) is None  # not one of the configured apps
    assert config.console.mfa_max_age == timedelta(minutes=3)


def test_without_the_section_there_is_no_console(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    assert config.console is None and routed_apps(config) == config.apps


@pytest.mark.parametrize(("section", "line", "key", "words"), [
    ("console: {host: 'https://admin.test/', group: a}", 1, "console.host",
     "must be a bare hostname"),
    ("console: {host: admin.test, group: 'it admins'}", 1, "console.group",
     "is not a group name"),
    ("console: {host: admin.test, group: IT-Admins}", 1, "console.group",
     "could never match anyone: write 'it-admins'"),
    ("console: {host: admin.test, group: a, mfa_max_age: 8h}", 1, "console.mfa_max_age",
     "keep it to a few minutes"),
    ("console: {host: admin.test}", 1, "console.group", "missing required key 'group'"),
    ("console: {host: pbx.example.test, group: a}", 1, "console.host",
     "already the host of app 'pbx'"),
    ("console: {host: admin.test, group: a, colour: red}", 1, "console.colour",
     "unknown key 'colour'"),
])
def test_refusals_name_the_key(tmp_path: Path, section: str, line: int, key: str,
                               words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, section + "\n" + BASE))
    text = str(caught.value)
    assert f"certgate.yaml:{line}: {key}" in text and words in text, text


def test_an_app_cannot_take_the_console_name(tmp_path: Path) -> None:
    text = CONSOLE + BASE.replace("name: pbx", f"name: {CONSOLE_APP}")
    with pytest.raises(ConfigError, match=r"apps\[0\]\.name: 'certgate-console' is the "):
        load_config(write(tmp_path, text))
