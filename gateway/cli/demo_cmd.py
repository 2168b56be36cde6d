"""``certgate demo``: everything on one machine in one command.

Creates (or reuses) a demo data directory with an unencrypted CA, a user "demo"
in group "staff" and their .p12, starts two sample apps on loopback and the
gateway in front of them, and prints what to open and what to import.

The CRL/OCSP URLs written into the demo's certificates name a loopback port
picked once, at creation; every run serves the PKI listener on the port those
URLs name, so a relying party (``openssl ocsp -url`` taken from the
certificate) always gets an answer.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import yaml
from aiohttp import web

from gateway.cli.common import CliError, now, run, warn
from gateway.config import Config, load_config
from gateway.manage import setup
from gateway.runtime import Runtime
from pki.keys import write_secret_file
from pki.p12 import generate_p12_password

HOSTS = ("intranet.localhost", "echo.localhost")

_EPILOG = """\b
EXAMPLES
  certgate demo
  certgate demo --data-dir /tmp/certgate-demo --port 9443
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str) -> None:
    from gateway.cli.main import main as certgate_main  # the group imports this module

    if certgate_main(list(args)) != 0:
        raise CliError(f"demo setup failed at: certgate {' '.join(args)}")


def _prepare(data_dir: Path) -> tuple[Path, Path, str]:
    config = data_dir / "certgate.yaml"
    p12 = data_dir / "demo.p12"
    password_file = data_dir / "demo-p12-password.txt"
    if not config.exists():
        warn("this is a DEMO: its CA key is not encrypted. Never use it for real access.")
        # The use-case, not `certgate init`: init's next steps (export, move the
        # root key offline) make no sense here.
        request = setup.SetupRequest(
            data_dir=data_dir, hostnames=(*HOSTS, "localhost", "127.0.0.1"),
            pki_base_url=f"http://127.0.0.1:{_free_port()}", ca_name="certgate demo",
            listen="127.0.0.1:8443")

        async def create() -> setup.DataDir:
            return await setup.create_data_dir(request, now=now())

        run(create)
        _run("--config", str(config), "user", "add", "demo", "--email", "demo@example.test",
             "--group", "staff")
    if not p12.exists():
        # A generated password, kept (0600) so that a second run can show it again.
        write_secret_file(password_file, generate_p12_password().encode() + b"\n")
        _run("--config", str(config), "cert", "issue", "demo", "--out", str(p12),
             "--p12-password-file", str(password_file))
    return config, p12, password_file.read_text().strip()


def _pki_port(config: Path) -> int:
    """The port the demo's certificates name for the CRL (and OCSP): serve there."""
    url = urlsplit(load_config(config).pki.crl_url or "")
    return url.port or 80


def _write_apps(config: Path, port: int, intranet: int, echo: int) -> None:
    pki_port = _pki_port(config)
    data: dict[str, Any] = yaml.safe_load(config.read_text())
    data["listen"] = f"127.0.0.1:{port}"
    data["admin_listen"] = "127.0.0.1:0"
    data["pki_listen"] = f"127.0.0.1:{pki_port}"
    data["apps"] = [
        {"name": "intranet", "host": HOSTS[0], "upstream": f"http://127.0.0.1:{intranet}",
         "allow": [{"groups": ["staff"]}]},
        {"name": "echo", "host": HOSTS[1], "upstream": f"http://127.0.0.1:{echo}",
         "websockets": True, "allow": [{"groups": ["staff"]}]},
    ]
    write_secret_file(config, yaml.safe_dump(data, sort_keys=False).encode())


def _revocation(config: Config) -> str:
    return f"{config.pki.crl_url} (CRL) and {config.pki.ocsp_url} (OCSP)"


@click.command("demo", epilog=_EPILOG)
@click.option("--data-dir", default=Path(".demo"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", default=8443, show_default=True, type=click.IntRange(0, 65535),
              help="Public TLS port of the demo gateway (0: any free port).")
def demo(data_dir: Path, port: int) -> None:
    """Run a complete demo: CA, user, certificate, two sample apps and the gateway."""
    from gateway.demo.apps import echo_app, intranet_app
    from gateway.server import _run_loop, run_server

    data_dir = data_dir.resolve()
    config_path, p12, password = _prepare(data_dir)
    intranet_port, echo_port = _free_port(), _free_port()
    _write_apps(config_path, port, intranet_port, echo_port)
    config = load_config(config_path)

    async def main() -> None:
        runners = []
        for app, app_port in ((intranet_app(HOSTS[1]), intranet_port),
                              (echo_app(), echo_port)):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", app_port).start()
            runners.append(runner)

        async def instructions(runtime: Runtime, addresses: dict[str, list[str]]) -> None:
            public_port = addresses["public"][0].rsplit(":", 1)[1]
            suffix = "" if public_port == "443" else f":{public_port}"
            click.echo(f"""
certgate demo is ready.

1. Import {p12}
   into your browser (Firefox: Settings > Privacy & Security > Certificates >
   View Certificates > Your Certificates > Import), password: {password}
2. Trust the demo CA for websites, or accept the warning once:
   {data_dir / 'ca' / 'root.pem'}
3. Open https://{HOSTS[0]}{suffix}/  (and https://{HOSTS[1]}{suffix}/)

Revocation is published at {_revocation(config)}.
Stop with Ctrl-C.""", err=False)

        try:
            await run_server(config, on_ready=instructions)
        finally:
            for runner in runners:
                await runner.cleanup()

    _run_loop(main)

