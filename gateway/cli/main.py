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
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from gateway.cli.common import CliContext

# Every sub-command: name -> (module, attribute, the one line `certgate --help` shows),
# in no particular order (`--help` sorts them). A module is imported only when its
# command runs, so `certgate --help` and `certgate user …` do not pay for aiohttp,
# SQLAlchemy or Jinja2 they never use; tests/gateway/cli/test_main.py checks that
# each line is the command's own.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("gateway.cli.init_cmd", "init",
             "Create a CA, the gateway's certificate and keys, a config and a database."),
    # the user group, with its second-factor commands
    "user": ("gateway.cli.factor_cmd", "user",
             "Manage the people who may hold certificates."),
    "session": ("gateway.cli.factor_cmd", "session",
                "List and end login sessions (password + code logins)."),
    "cert": ("gateway.cli.cert_cmd", "cert", "Issue, list and revoke client certificates."),
    "crl": ("gateway.cli.crl_cmd", "crl",
            "Sign and publish a fresh CRL (number and thisUpdate always increase)."),
    "ca": ("gateway.cli.ca_cmd", "ca", "Look after the CA itself (offline root)."),
    "policy": ("gateway.cli.policy_cmd", "policy",
               "Validate the config's policies and explain decisions."),
    "db": ("gateway.cli.db_cmd", "db", "The database: migrations, and moving to PostgreSQL."),
    "audit": ("gateway.cli.audit_cmd", "audit",
              "The audit trail: search it, export it, prove that no record was changed, "
              "removed or added, and write the access review for a reviewer."),
    "doctor": ("gateway.cli.doctor_cmd", "doctor",
               "Check this install and say how to fix each problem found."),
    "serve": ("gateway.cli.serve_cmd", "serve",
              "Run the gateway until SIGTERM/SIGINT; SIGHUP reloads the config."),
    "demo": ("gateway.cli.demo_cmd", "demo",
             "Run a complete demo: CA, user, certificate, two sample apps and the gateway."),
}


class LazyGroup(click.Group):
    """click's lazy-loading group: a command's module is imported when it is used;
    the group's own ``--help`` lists the commands from ``COMMANDS`` alone."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute, _ = COMMANDS[cmd_name]
            command = getattr(import_module(module), attribute)
            if not isinstance(command, click.Command):  # pragma: no cover - a wiring slip
                raise TypeError(f"{module}.{attribute} is not a click command")
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            stand_in = loaded or click.Command(name, help=COMMANDS[name][2])
            if not stand_in.hidden:
                rows.append((name, stand_in.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


_EPILOG = """\b
EXAMPLES
  certgate init --data-dir /var/lib/certgate --hostname gw.example.com
  certgate user add alice --email alice@example.com --group staff
  certgate cert issue alice --out alice.p12
  certgate cert revoke 5F3A... --reason keyCompromise
  certgate --config /var/lib/certgate/certgate.yaml serve
"""


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_EPILOG)
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
    from gateway.cli.common import CliContext

    ctx.obj = CliContext(config_option=config_path)


@cli.result_callback()
@click.pass_obj
def _after_command(obj: CliContext, /, *_: object, **__: object) -> None:
    """After a command printed what it did: exit 1 if a change went unrecorded."""
    obj.check_recorded()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (testable in-process)."""
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
    except KeyboardInterrupt:
        click.echo("certgate: interrupted", err=True)
        return 1
    except Exception as exc:
        click.echo(_failure(exc), err=True)
        return 1
    return 0


def _failure(exc: Exception) -> str:
    """The one-sentence report of a failed command (imported here, not at start-up)."""
    from gateway.cli.common import CliError
    from gateway.config import ConfigError
    from gateway.manage.errors import ManageError
    from gateway.store.errors import StoreError
    from pki.keys import PkiError

    if isinstance(exc, ConfigError):
        return f"certgate: invalid config:\n{exc}"
    if isinstance(exc, (CliError, ManageError, StoreError, PkiError)):
        return f"certgate: {_one_line(exc)}"
    if os.environ.get("CERTGATE_DEBUG"):
        traceback.print_exception(exc)
    return f"certgate: unexpected error ({type(exc).__name__}): {_one_line(exc)}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
