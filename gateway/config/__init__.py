"""The one frozen, validated configuration object.

``load_config(path)`` reads the YAML file once, validates every key and returns a
``Config``; errors are collected into one ``ConfigError`` naming file, line and key
of each problem. Relative paths are relative to the directory holding the file.

Nothing else in certgate reads the config file or the environment for settings.
This module must not start anything, open sockets or touch the database.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.audit.destination import audit_path_problem
from gateway.config.audit import AuditConfig
from gateway.config.console import ConsoleConfig, console_clashes, routed_apps
from gateway.config.front import ProxyProtocolConfig
from gateway.config.lost import LostConfig
from gateway.config.mail import MailConfig
from gateway.config.node import NODE_RE, default_node, is_node_name
from gateway.config.values import (
    ConfigPath,
    Duration,
    HostPort,
    Size,
    parse_size,
)
from policies.loader import PolicyError, build_policy_set
from policies.model import PolicySet
from policies.schema import AppPolicySpec
from policies.yamlsource import (
    SourceError,
    SourceIssue,
    YamlDocument,
    format_loc,
    issues_from_validation_error,
    load_yaml_document,
)

__all__ = ["Config", "ConfigError", "HostPort", "default_node", "is_node_name", "load_config",
           "parse_size"]

CONFIG_ENV = "CERTGATE_CONFIG"
DEFAULT_CONFIG_NAME = "certgate.yaml"


class ConfigError(SourceError):
    """The config file is unreadable or invalid; ``issues`` name file, line and key."""


# --- value types --------------------------------------------------------------------


# --- sections -----------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Section):
    cert: ConfigPath
    key: ConfigPath
    client_ca: ConfigPath
    client_chain: ConfigPath | None = None
    min_version: Literal["1.2", "1.3"] = "1.2"
    # The gateway renews its own server certificate from its CA (same names, same
    # lifetime, a new key) once this fraction of the certificate's lifetime has passed.
    # Off, or a certificate from another CA: the admin renews it and reloads.
    auto_renew: bool = True
    renew_at: float = Field(default=2 / 3, gt=0.0, lt=1.0)


class PkiConfig(_Section):
    ca_dir: ConfigPath
    crl_url: str | None = None
    ocsp_url: str | None = None
    crl_validity: Duration = timedelta(hours=24)
    client_cert_days: int = Field(default=365, ge=1, le=3650)
    p12_profile: Literal["modern", "compat"] = "modern"
    ca_passphrase_file: ConfigPath | None = None
    ocsp_signer_cert: ConfigPath | None = None
    ocsp_signer_key: ConfigPath | None = None

    @field_validator("crl_url", "ocsp_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        # Relying parties fetch CDP/AIA over plain HTTP by convention (RFC 5280 4.2.1.13).
        if value is not None and not re.fullmatch(r"http://[^\s/]+(/\S*)?", value):
            raise ValueError(f"'{value}' must be a plain http:// URL")
        return value


class AssertionConfig(_Section):
    key: ConfigPath
    ttl: Duration = timedelta(seconds=60)
    issuer: str = "certgate"


class LockoutConfig(_Section):
    """After ``max_failures`` failed logins within ``window``, locked for ``lock_for``."""

    max_failures: int = Field(default=5, ge=1, le=100)
    window: Duration = timedelta(minutes=15)
    lock_for: Duration = timedelta(minutes=15)


class AuthConfig(_Section):
    """The second factor: where its secrets key lives, session lifetimes, lockout."""

    secrets_key: ConfigPath  # default: <data_dir>/secrets.key
    session_idle: Duration = timedelta(hours=1)
    session_absolute: Duration = timedelta(hours=12)
    # Open WebSockets are judged again this often (and at once on any change).
    websocket_reauth: Duration = timedelta(seconds=60)
    lockout: LockoutConfig = LockoutConfig()
    issuer: str = Field(default="certgate", min_length=1, max_length=64)  # in the phone app
    helpdesk: str = Field(default="your administrator", min_length=1, max_length=200)


class LimitsConfig(_Section):
    """Connection-level limits against slow and flooding clients (see gateway.http.guard)."""

    request_head_timeout: Duration = timedelta(seconds=10)
    idle_timeout: Duration = timedelta(seconds=75)
    handshake_timeout: Duration = timedelta(seconds=10)
    max_anonymous_per_source: int = Field(default=32, ge=1)
    max_anonymous: int = Field(default=512, ge=1)
    fd_reserve: int = Field(default=64, ge=16)


_UPSTREAM_RE = re.compile(r"^(https?)://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?/?$")


def _upstream_url(value: str) -> str:
    if not _UPSTREAM_RE.match(value):
        raise ValueError(
            f"'{value}' is not an upstream URL of the form http(s)://host[:port] (no path)"
        )
    return value.rstrip("/")


UpstreamURL = Annotated[str, AfterValidator(_upstream_url)]


class RouteConfig(_Section):
    """A path-prefix route inside an app; unset fields inherit the app's value."""

    path: str
    upstream: UpstreamURL | None = None
    websockets: bool | None = None
    ws_idle_timeout: Duration | None = None
    ws_ping_interval: Duration | None = None
    connect_timeout: Duration | None = None
    read_timeout: Duration | None = None
    max_body_size: Size | None = None

    @field_validator("path")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*", value) or "//" in value:
            raise ValueError(f"'{value}' is not a path prefix starting with '/'")
        if "/../" in value + "/" or "/./" in value + "/":
            raise ValueError(f"'{value}' must not contain dot segments")
        return value.rstrip("/") or "/"


class AppConfig(AppPolicySpec):
    """An application: its policy keys (from ``AppPolicySpec``) plus how to reach it."""

    upstream: UpstreamURL
    upstream_ca: ConfigPath | None = None
    upstream_verify: bool = True
    upstream_pin_sha256: str | None = None
    upstream_server_name: str | None = None
    upstream_host_header: Literal["original", "upstream"] = "original"
    websockets: bool = False
    ws_idle_timeout: Duration = timedelta(seconds=3600)
    ws_ping_interval: Duration | None = None
    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=60)
    max_body_size: Size = 100 * 2**20
    forward_client_cert: bool = False
    # Keep the query string in audit records (default: "?[redacted]"): only for apps
    # whose queries carry no secrets (tokens, reset links often do). Strictly true/false.
    audit_query: StrictBool = False
    ports: tuple[int, ...] = ()
    routes: tuple[RouteConfig, ...] = ()

    @field_validator("upstream_pin_sha256")
    @classmethod
    def _pin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        pin = value.replace(":", "").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", pin):
            raise ValueError("must be the hex SHA-256 of the upstream's DER certificate")
        return pin

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is out of range (1-65535)")
        if len(set(value)) != len(value):
            raise ValueError("a port is listed twice")
        return value

    @model_validator(mode="after")
    def _routes_unique(self) -> AppConfig:
        seen: set[str] = set()
        for route in self.routes:
            if route.path in seen:
                raise ValueError(f"route path '{route.path}' is listed twice")
            seen.add(route.path)
        if self.upstream_ca is not None and not self.upstream.startswith("https://"):
            raise ValueError("upstream_ca is set but the upstream is not https://")
        return self


class Config(_Section):
    """The whole validated configuration. Build it with ``load_config``."""

    file: Path
    data_dir: ConfigPath
    # This gateway's name in the audit trail: each node keeps its own hash chain, so
    # two gateways sharing a database need two names. Default: the host name.
    node: str = Field(default_factory=default_node)
    database_url: str
    # PostgreSQL: hear of changes at once through LISTEN/NOTIFY (one extra connection
    # per node). false: poll the event feed every 0.25 s instead, for a pooler that
    # cannot LISTEN (PgBouncer in transaction mode) or to measure the poll.
    database_listen: bool = True
    listen: HostPort = HostPort(host="0.0.0.0", port=8443)  # noqa: S104 - a gateway listens publicly
    admin_listen: HostPort = HostPort(host="127.0.0.1", port=9443)
    pki_listen: HostPort | None = None
    proxy_protocol: ProxyProtocolConfig | None = None  # listeners behind an L4 balancer
    workers: int = Field(default=1, ge=1, le=64)
    public_hostnames: tuple[str, ...] = ()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # JSON lines for a collector, text for a terminal; "auto" picks by standard error.
    log_format: Literal["auto", "json", "text"] = "auto"
    tls: TlsConfig
    pki: PkiConfig
    assertion: AssertionConfig
    audit: AuditConfig
    auth: AuthConfig
    limits: LimitsConfig = LimitsConfig()
    lost: LostConfig = LostConfig()  # the "I lost my USB stick" page
    mail: MailConfig | None = None  # the SMTP relay (lost.email_to, e-mailed links)
    console: ConsoleConfig | None = None  # the admin console (gateway.console)
    apps: tuple[AppConfig, ...] = ()

    _policy_set: PolicySet | None = PrivateAttr(default=None)

    @property
    def policy_set(self) -> PolicySet:
        """The compiled policies, built once at load time."""
        if self._policy_set is None:
            self._policy_set = build_policy_set(routed_apps(self))
        return self._policy_set

    def app(self, name: str) -> AppConfig | None:
        return next((a for a in self.apps if a.name == name), None)

    @field_validator("node")
    @classmethod
    def _node(cls, value: str) -> str:
        if not NODE_RE.fullmatch(value):
            raise ValueError(f"'{value}' is not a node name (1-60 letters, digits, '.', '_' "
                             "or '-', starting with a letter or digit)")
        return value


# --- loading ------------------------------------------------------------------------


def default_config_path(explicit: str | Path | None, environ: dict[str, str]) -> Path:
    """``--config`` wins, then ``$CERTGATE_CONFIG``, then ``./certgate.yaml``."""
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return Path(DEFAULT_CONFIG_NAME)


def load_config(path: Path, *, writing: bool = True) -> Config:
    """Read, validate and compile the config file at ``path``.

    Raises ``ConfigError`` listing every problem with file, line and key.
    ``writing=False`` is for read-only commands (``audit verify``, run by a reviewer
    as another user): the audit file and checkpoint file need not be writable.
    """
    try:
        doc = load_yaml_document(path)
    except SourceError as exc:
        raise ConfigError(exc.issues) from None
    return config_from_document(doc, path, writing=writing)


def _data_dir(data: dict[str, Any], base_dir: Path) -> Path:
    data_dir = Path(str(data["data_dir"])).expanduser()
    return data_dir if data_dir.is_absolute() else base_dir / data_dir


def config_from_document(doc: YamlDocument, path: Path, *, writing: bool = True) -> Config:
    """Validate an already parsed document (pure apart from path resolution and, with
    ``writing``, looking whether the audit files can be written)."""
    if not isinstance(doc.data, dict):
        raise ConfigError(
            (SourceIssue(doc.file, 1, "", "the config must be a mapping of keys"),)
        )
    base_dir = path.resolve().parent
    data = dict(doc.data)
    if "file" in data:
        raise ConfigError(
            (SourceIssue(doc.file, doc.line_of(("file",)), "file", "unknown key 'file'"),)
        )
    data["file"] = path.resolve()
    data.setdefault("data_dir", ".")
    if data.get("database_url") is None:
        data["database_url"] = f"sqlite+aiosqlite:///{_data_dir(data, base_dir) / 'certgate.db'}"
    auth = data.get("auth")
    if auth is None or (isinstance(auth, dict) and "secrets_key" not in auth):
        data["auth"] = {**(auth or {}), "secrets_key": str(_data_dir(data, base_dir)
                                                          / "secrets.key")}
    audit = data.get("audit")
    if audit is None or isinstance(audit, dict):
        data["audit"] = {"key": str(_data_dir(data, base_dir) / "audit.key"),
                         "checkpoints": str(_data_dir(data, base_dir) / "audit"
                                            / "checkpoints.jsonl"), **(audit or {})}
    try:
        config = Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(tuple(issues_from_validation_error(exc, doc))) from None
    clashes = port_clashes(config) + console_clashes(config.console, config.apps)
    if config.proxy_protocol and "pki" in config.proxy_protocol.listeners and not config.pki_listen:
        clashes.append((("proxy_protocol", "listeners"), "names pki, but pki_listen is not set"))
    if config.lost.email_to and config.mail is None:
        clashes.append((("lost", "email_to"), "is set, but there is no mail: section to send with"))
    for key in ("path", "checkpoints") if writing else ():
        path = getattr(config.audit, key)
        if path is not None and (problem := audit_path_problem(path)) is not None:
            clashes.append((("audit", key), problem))
    if clashes:
        raise ConfigError([SourceIssue(doc.file, doc.line_of(loc), format_loc(loc), message)
                           for loc, message in clashes])
    try:
        config._policy_set = build_policy_set(routed_apps(config), doc=doc)
    except PolicyError as exc:
        raise ConfigError(exc.issues) from None
    return config


def port_clashes(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """Listeners that would fight over a port, each with the key that names it."""
    taken: dict[int, str] = {}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    listeners: list[tuple[tuple[str | int, ...], HostPort | None]] = [
        (("listen",), config.listen), (("admin_listen",), config.admin_listen),
        (("pki_listen",), config.pki_listen)]
    for loc, hostport in listeners:
        if hostport is None or hostport.port == 0:  # 0: any free port, never a clash
            continue
        port = hostport.port
        if port in taken:
            problems.append((loc, f"port {port} is already used by {taken[port]}"))
        taken[port] = str(loc[0])
    for i, app in enumerate(config.apps):
        for j, port in enumerate(app.ports):
            if port in taken:
                problems.append((("apps", i, "ports", j),
                                 f"port {port} is already used by {taken[port]}"))
    return problems
