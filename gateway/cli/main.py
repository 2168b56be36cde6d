"""``certgate`` entry point: the command group, global options and error handling.

Exit codes: 0 ok, 1 failure, 2 usage error. Errors are one sentence on stderr;
``CERTGATE_DEBUG=1`` adds the traceback for developers. This module must not
contain command logic: each noun lives in its own module.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path

import click

from gateway.cli.common import CliContext, CliError
from gateway.config import ConfigError, default_config_path

# (module, attribute) of every sub-command, in the order `--help` lists them.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("gateway.cli.init_cmd", "init"),
    ("gateway.cli.factor_cmd", "user"),  # the user group, with its second-factor commands
    ("gateway.cli.factor_cmd", "session"),
    ("gateway.cli.cert_cmd", "cert"),
    ("gateway.cli.crl_cmd", "crl"),
    ("gateway.cli.ca_cmd", "ca"),
    ("gateway.cli.policy_cmd", "policy"),
    ("gateway.cli.db_cmd", "db"),
    ("gateway.cli.audit_cmd", "audit"),
    ("gateway.cli.doctor_cmd", "doctor"),
    ("gateway.cli.serve_cmd", "serve"),
    ("gateway.cli.demo_cmd", "demo"),
)

_EPILOG = """\b
EXAMPLES
  certgate init --data-dir /var/lib/certgate --hostname gw.example.com
  certgate user add alice --email alice@example.com --group staff
  certgate cert issue alice --out alice.p12
  certgate cert revoke 5F3A... --reason keyCompromise
  certgate --config /var/lib/certgate/certgate.yaml serve
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $CERTGATE_CONFIG, then ./certgate.yaml).",
)
@click.version_option(package_name="certgate", prog_name="certgate")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """certgate: a zero-VPN access gateway with client certificates from your own CA."""
    ctx.obj = CliContext(config_path=default_config_path(config_path, dict(os.environ)))


@cli.result_callback()
@click.pass_obj
def _after_command(obj: CliContext, /, *_: object, **__: object) -> None:
    """After a command printed what it did: exit 1 if a change went unrecorded."""
    obj.check_recorded()


for _module, _attr in COMMANDS:
    cli.add_command(getattr(import_module(_module), _attr))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (testable in-process)."""
    from gateway.manage.errors import ManageError
    from gateway.store.errors import StoreError
    from pki.keys import PkiError

    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="certgate",
                        standalone_mode=False)
        if isinstance(code, int):  # a command that raised click's Exit (audit verify: 1)
            return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        exc.show()
        return 2
    except click.Abort:
        click.echo("certgate: aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ConfigError as exc:
        click.echo(f"certgate: invalid config:\n{exc}", err=True)
        return 1
    except (CliError, ManageError, StoreError, PkiError) as exc:
        click.echo(f"certgate: {_one_line(exc)}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("certgate: interrupted", err=True)
        return 1
    except Exception as exc:
        if os.environ.get("CERTGATE_DEBUG"):
            traceback.print_exc()
        click.echo(f"certgate: unexpected error ({type(exc).__name__}): {_one_line(exc)}",
                   err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
