"""The ``console:`` section: the admin console, served by the gateway on its own host.

``host`` is a name of the gateway (the server certificate must name it, like an app
host; ``certgate doctor`` checks it); ``group`` is the group whose members may use
it; ``mfa_max_age`` how recent their second factor must be (a few minutes: every
page of the console can change access). The console is admitted like an app with
``mfa: required`` (``Config.console_app``). No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, field_validator

from gateway.config.values import Duration
from policies.schema import AppPolicySpec, bare_hostname, principal_name

if TYPE_CHECKING:
    from gateway.config import AppConfig, Config

CONSOLE_APP = "certgate-console"  # the name it has in the policy set and the audit trail


class ConsoleConfig(BaseModel):
    """Where the console answers and who may use it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    group: str
    mfa_max_age: Duration = timedelta(minutes=5)

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: Any) -> Any:
        return bare_hostname(value)

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        return principal_name("group", value)

    @field_validator("mfa_max_age")
    @classmethod
    def _age(cls, value: timedelta) -> timedelta:
        if value > timedelta(hours=1):
            raise ValueError("mfa_max_age is longer than 1h; the console changes access, "
                             "keep it to a few minutes (e.g. 5m)")
        return value


def routed_apps(config: Config) -> tuple[AppConfig, ...]:
    """The apps and, when configured, the console as a built-in app: the console group,
    ``mfa: required`` with the console's ``mfa_max_age``; what the router and the
    policies see. Its upstream is never used: the request story answers the console
    itself (``gateway.console``)."""
    from gateway.config import AppConfig  # the package imports this module first

    console = config.console
    if console is None:
        return config.apps
    return (*config.apps, AppConfig.model_validate({
        "name": CONSOLE_APP, "host": console.host, "upstream": "http://127.0.0.1:9",
        "allow": [{"groups": [console.group]}], "mfa": "required",
        "mfa_max_age": console.mfa_max_age}))


def console_clashes(console: ConsoleConfig | None, apps: Sequence[AppPolicySpec]
                    ) -> list[tuple[tuple[str | int, ...], str]]:
    """An app on the console's host, or named as the console is in the audit trail."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if console is None:
        return problems
    for i, app in enumerate(apps):
        if app.host == console.host:
            problems.append((("console", "host"), f"{app.host} is already the host of "
                             f"app '{app.name}'; the console needs a host of its own"))
        if app.name == CONSOLE_APP:
            problems.append((("apps", i, "name"), f"'{CONSOLE_APP}' is the console's "
                             "name in the audit trail; name the app otherwise"))
    return problems
