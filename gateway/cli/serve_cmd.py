"""``certgate serve``: run the gateway (flags override the config file)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli.common import CliContext, CliError

if TYPE_CHECKING:  # the rest is imported when the command runs: `--help` stays quick
    from gateway.config import HostPort

_EPILOG = """\b
EXAMPLES
  certgate serve
  certgate --config /var/lib/certgate/certgate.yaml serve --workers 2
  certgate serve --listen 0.0.0.0:443 --admin-listen 127.0.0.1:9443
  kill -HUP <pid>     # reload the config; an invalid one is refused, the old one stays
"""


def _hostport(ctx: click.Context, param: click.Parameter, value: str | None) -> HostPort | None:
    from gateway.config import HostPort

    if value is None:
        return None
    try:
        return HostPort.model_validate(value)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)  # pydantic's: the first one, in words
        message = errors()[0]["msg"] if callable(errors) else str(exc)
        raise click.BadParameter(message.removeprefix("Value error, ")) from None


@click.command("serve", epilog=_EPILOG)
@click.option("--listen", callback=_hostport, help="Public TLS listener, HOST:PORT.")
@click.option("--admin-listen", callback=_hostport,
              help="Admin listener for /healthz, /readyz, /metrics, HOST:PORT.")
@click.option("--workers", type=click.IntRange(1, 64),
              help="Processes sharing the ports through SO_REUSEPORT; /metrics adds up "
                   "their counts. One worker ending stops them all (exit 1).")
@click.pass_obj
def serve(obj: CliContext, listen: HostPort | None, admin_listen: HostPort | None,
          workers: int | None) -> None:
    """Run the gateway until SIGTERM/SIGINT; SIGHUP reloads the config."""
    from gateway.ops.instance import DataDirInUse
    from gateway.ops.logs import configure_logging
    from gateway.ops.workers import WorkerFailed
    from gateway.server import serve as run

    config = obj.config
    configure_logging(config.log_level, config.log_format)
    try:
        run(config, listen=listen, admin_listen=admin_listen, workers=workers)
    except OSError as exc:
        raise CliError(f"cannot listen: {exc.strerror or exc}") from None
    except (ValueError, DataDirInUse) as exc:
        raise CliError(str(exc)) from None
    except WorkerFailed as exc:
        raise CliError(f"stopped: {exc}. A service manager (systemd's Restart=on-failure) "
                       "starts the whole gateway again.") from None
