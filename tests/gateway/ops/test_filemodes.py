"""Start-up file checks on a real data dir from `certgate init`: a key file others may
read stops the start, naming the chmod; a world-readable config or database starts
with one loud line each."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.ops.filemodes import exposed_files, secret_files
from gateway.runtime import Runtime
from pki.keys import InsecureFileError, write_secret_file
from tests.gateway.conftest import Template


async def data_dir(tmp_path: Path, template: Template) -> Path:
    gw, _ = await asyncio.to_thread(template.copy_to, tmp_path)
    return gw


@pytest.mark.parametrize(("relative", "mode"), [
    ("ca/issuing-key.pem", 0o644),
    ("ca/root-key.pem", 0o640),
    ("tls/server-key.pem", 0o604),
    ("keys/assertion-es256.pem", 0o644),
    ("ca/ocsp-key.pem", 0o660),
    ("ca-passphrase", 0o644),
    ("audit.key", 0o640),
])
async def test_a_readable_secret_file_stops_the_start(
        tmp_path: Path, gateway_template: Template, relative: str, mode: int) -> None:
    gw = await data_dir(tmp_path, gateway_template)
    if relative == "ca-passphrase":
        write_secret_file(gw / relative, b"unused\n")
        text = (gw / "certgate.yaml").read_text()
        (gw / "certgate.yaml").write_text(
            text.replace("pki:\n", "pki:\n  ca_passphrase_file: ca-passphrase\n", 1))
    config = load_config(gw / "certgate.yaml")
    assert gw / relative in secret_files(config)
    (gw / relative).chmod(mode)
    with pytest.raises(InsecureFileError) as err:
        await Runtime.start(config)
    assert f"{gw / relative} is readable by group or others (mode {mode:04o}); " \
           f"run chmod 600 {gw / relative}" == str(err.value)


async def test_an_offline_root_key_is_not_looked_for(
        tmp_path: Path, gateway_template: Template) -> None:
    gw = await data_dir(tmp_path, gateway_template)
    (gw / "ca" / "root-key.pem").unlink()
    assert gw / "ca" / "root-key.pem" not in secret_files(load_config(gw / "certgate.yaml"))


async def test_a_world_readable_config_or_database_is_one_loud_line_each(
        tmp_path: Path, gateway_template: Template, caplog: pytest.LogCaptureFixture) -> None:
    gw = await data_dir(tmp_path, gateway_template)
    config = load_config(gw / "certgate.yaml")
    assert exposed_files(config) == []  # init writes both 0600
    (gw / "certgate.yaml").chmod(0o644)
    (gw / "certgate.db").chmod(0o604)
    with caplog.at_level(logging.WARNING, logger="certgate"):
        runtime = await Runtime.start(config)  # starts: refusing would break a working install
        await runtime.stop()
    warnings = [r.getMessage() for r in caplog.records if "readable by every user" in
                r.getMessage()]
    assert warnings == [
        f"{gw / 'certgate.yaml'} (the config) is readable by every user of this machine "
        f"(mode 0644); run chmod 600 {gw / 'certgate.yaml'}",
        f"{gw / 'certgate.db'} (the database) is readable by every user of this machine "
        f"(mode 0604); run chmod 600 {gw / 'certgate.db'}"]
