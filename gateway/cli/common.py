"""What every sub-command shares: the context object, errors, output helpers.

Must not hold long-lived state: each invocation builds what it needs and closes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:  # the rest is imported where used: `certgate … --help` stays quick
    from gateway.config import Config
    from gateway.manage.ca import CaLoader
    from gateway.manage.trail import AdminTrail
    from gateway.store.store import Store

T = TypeVar("T")


class CliError(Exception):
    """A failure to report as one sentence on stderr with exit code 1."""


@dataclass
class CliContext:
    """Per-invocation state hung on ``click.Context.obj``."""

    config_option: Path | None = None  # --config as given
    _config: Config | None = field(default=None, repr=False)
    # Admin changes made whose audit record could not be written: reported (exit 1)
    # once the command has printed what it did (``main``'s result callback).
    unrecorded: list[str] = field(default_factory=list)

    # Set by read-only commands (audit verify) before reading ``config``: the audit
    # and checkpoint files then need not be writable by whoever runs them.
    read_only: bool = False

    @property
    def config_path(self) -> Path:
        """``--config``, then ``$CERTGATE_CONFIG``, then ``./certgate.yaml``."""
        from gateway.config import default_config_path

        return default_config_path(self.config_option, dict(os.environ))

    @property
    def config(self) -> Config:
        from gateway.config import load_config

        if self._config is None:
            if not self.config_path.exists():
                raise CliError(
                    f"no config file at {self.config_path}; pass --config PATH, set "
                    "CERTGATE_CONFIG, or run `certgate init` first"
                )
            self._config = load_config(self.config_path, writing=not self.read_only)
        return self._config

    @asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """Open the configured database (migrating it), close it afterwards."""
        from gateway.store.store import Store

        store = await Store.open(self.config.database_url)
        try:
            yield store
        finally:
            await store.close()

    @asynccontextmanager
    async def admin(self) -> AsyncIterator[tuple[Store, AdminTrail]]:
        """The store and the audit trail of this invocation's admin changes (actor:
        the OS user). At the end the trail signs its checkpoint; a record that could
        not be written is kept in ``unrecorded`` and fails the command after its output."""
        from gateway.manage.trail import AdminTrail, os_actor

        async with self.store() as store:
            trail = AdminTrail(store, self.config, os_actor(), keep_going=True)
            try:
                yield store, trail
            finally:
                await trail.close()
                self.unrecorded.extend(trail.problems)

    def check_recorded(self) -> None:
        """Refuse (exit 1) when a change this invocation made went unrecorded."""
        if self.unrecorded:
            raise CliError("the change was made, but " + "; ".join(self.unrecorded))


def run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine to completion on a fresh event loop."""

    async def _main() -> T:
        return await coro_factory()

    return asyncio.run(_main())


def now() -> datetime:
    return datetime.now(UTC)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain aligned table (no colours, so it pipes and greps well)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def exit_if_unrecorded(problem: str | None) -> None:
    """After an audit read was shown: exit 1 when its ``audit.read`` record could not
    be written (reading the trail unrecorded must not pass quietly)."""
    if problem is not None:
        click.echo(f"certgate: done, but {problem}", err=True)
        raise click.exceptions.Exit(1)


def read_secret_argument(path: Path | None, env_name: str | None, prompt: str | None,
                         *, confirm: bool = False) -> str | None:
    """A secret from a file (first line), then an environment variable, then a prompt.

    Returns None when none is available and prompting is impossible.
    """
    from pki.keys import read_secret_line

    if path is not None:
        value = read_secret_line(path)
        if not value:
            raise CliError(f"{path} is empty")
        return value
    if env_name and os.environ.get(env_name):
        return os.environ[env_name]
    if prompt and sys.stdin.isatty():
        value = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
        return str(value)
    return None


def _prompt_ca_passphrase() -> str:
    return str(click.prompt("CA key passphrase", hide_input=True))


def ca_loader(config: Config) -> CaLoader:
    """The online CA for a use-case; prompts for the passphrase only on a terminal."""
    from gateway.manage.ca import load_online_ca

    prompt = _prompt_ca_passphrase if os.isatty(0) else None
    return lambda: load_online_ca(config, prompt=prompt)
