"""Setting up a new data directory: CA, OCSP signer, server certificate, keys, config, database.

Everything is built in a staging directory and moved into place only once the
database and its first CRL are ready, so a failure leaves no half-made CA behind.
The database is SQLite in the directory, or a PostgreSQL database named by
``database_url``; one that already holds a certgate install is refused before
anything is made (a second node joins with a copy of the first one's directory).
Refuses to touch a directory that already holds a CA or a config; on an existing
install (one with a config) it only adds the keys of ``KEY_FILES`` that are
missing, at the paths that config names, and never replaces one.

Takes plain values (the passphrase itself, not where it comes from) and returns
what it made. Never prompts, prints or exits; refuses with ``ManageError``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.audit.keys import create_audit_key
from gateway.auth.assertion import generate_assertion_key
from gateway.auth.secretbox import create_key_file
from gateway.config import Config, default_node, load_config
from gateway.manage.crl import publish_crl
from gateway.manage.database import tables_with_data
from gateway.manage.errors import ManageError
from gateway.store.db import safe_url, sqlite_url
from gateway.store.store import Store
from pki.ca import (
    CA_FILES,
    build_ca,
    issue_ocsp_signer,
    issue_server_cert,
    load_ca,
    save_ca,
)
from pki.keys import KeyType, generate_key, key_to_pem, write_public_file, write_secret_file
from policies.schema import is_hostname

CONFIG_NAME = "certgate.yaml"
DATABASE_NAME = "certgate.db"
SERVER_CERT_DAYS = 397
OCSP_SIGNER_DAYS = 397
MIN_CA_PASSPHRASE = 12

CONFIG_TEMPLATE = """\
# certgate configuration, written by `certgate init`.
# Relative paths are relative to the directory holding this file.
# Check it with `certgate policy check`; reload a running gateway with SIGHUP.
data_dir: .
{database_lines}
listen: "{listen}"
admin_listen: "127.0.0.1:9443"    # /healthz, /readyz, /metrics (keep it on loopback)
pki_listen: "{pki_listen}"        # plain HTTP on every address: the CRL and OCSP only
workers: 1
public_hostnames: [{hostnames}]

tls:
  cert: tls/server.pem            # server certificate + issuing CA
  key: tls/server-key.pem
  client_ca: ca/root.pem          # client certificates must chain to this root
  client_chain: ca/issuing.pem
  min_version: "1.2"

pki:
  ca_dir: ca
  crl_url: "{crl_url}"
  ocsp_url: "{ocsp_url}"
  crl_validity: 24h
  client_cert_days: 365
  p12_profile: modern             # compat: 3DES/SHA-1 for macOS Keychain and old Windows
  ocsp_signer_cert: ca/ocsp.pem
  ocsp_signer_key: ca/ocsp-key.pem
  # ca_passphrase_file: /etc/certgate/ca-passphrase   # 0600; lets `serve` re-sign CRLs

assertion:
  key: keys/assertion-es256.pem
  ttl: 60s

audit:
  # Every decision is a record in the database (audit_records), hash-chained per node,
  # with checkpoints signed by audit.key (audit.pub verifies them) also appended to
  # audit/checkpoints.jsonl. Check it all with `certgate audit verify`.
  on_failure: keep-serving        # or deny: refuse requests while no record can be kept
  # path: audit/audit.jsonl       # also write every record as a JSON line to this file

# The published apps: add an `apps:` list at the end of this file, such as
# apps:
#   - name: wiki
#     host: wiki.example.com
#     upstream: http://10.0.0.10:8080
#     allow:
#       - groups: [staff]
"""


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """What ``certgate init`` was asked for; ``passphrase`` None stores the CA keys unencrypted."""

    data_dir: Path
    hostnames: tuple[str, ...]
    pki_base_url: str
    ca_name: str = "certgate"
    key_type: KeyType = "ec-p256"
    passphrase: bytes | None = None
    listen: str = "0.0.0.0:8443"
    database_url: str | None = None  # None: SQLite in the data directory
    node: str | None = None  # this gateway's name in the audit trail (None: the host name)


@dataclass(frozen=True, slots=True)
class DataDir:
    """The data directory ``create_data_dir`` made."""

    path: Path
    encrypted: bool
    database_url: str | None = None  # None: SQLite in the data directory

    @property
    def ca_dir(self) -> Path:
        return self.path / "ca"

    @property
    def server_cert(self) -> Path:
        return self.path / "tls" / "server.pem"

    @property
    def config(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def database(self) -> str:
        """Where the database is, for people (a password in a URL is masked)."""
        if self.database_url is None:
            return str(self.path / DATABASE_NAME)
        return safe_url(self.database_url)


@dataclass(frozen=True, slots=True)
class KeyFile:
    """A key every install needs, which ``init`` makes and adds to an install without it."""

    name: str  # for people: "secrets key"
    purpose: str  # what it is for, in a few words
    path: Callable[[Config], Path]  # where the config puts it
    create: Callable[[Path], bool]  # a new key at the path (0600) unless one is there


# The keys `init` makes and, on an existing install, adds where missing. A new kind
# of key (a newer version's) is one more line here.
KEY_FILES: tuple[KeyFile, ...] = (
    KeyFile("secrets key", "seals the TOTP secrets", lambda c: c.auth.secrets_key,
            create_key_file),
    KeyFile("audit key", "signs the audit checkpoints; audit.pub beside it verifies them",
            lambda c: c.audit.key,
            lambda path: create_audit_key(path, path.with_suffix(".pub"))),
)


@dataclass(frozen=True, slots=True)
class AddedKey:
    key: KeyFile
    path: Path


def add_missing_keys(config: Config) -> list[AddedKey]:
    """Create each of ``KEY_FILES`` that is missing (0600); an existing one stays as it is."""
    added = []
    for key in KEY_FILES:
        path = key.path(config)
        try:
            created = key.create(path)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename and exc.filename != str(path) else ""
            raise ManageError(f"cannot write the {key.name} {path}: "
                              f"{exc.strerror or exc}{where}") from None
        if created:
            added.append(AddedKey(key, path))
    return added


def is_installed(data_dir: Path) -> bool:
    """True for a data directory that already holds a config (an existing install)."""
    return (data_dir / CONFIG_NAME).exists()


def complete_data_dir(data_dir: Path) -> list[AddedKey]:
    """Add the keys an existing install lacks, where its config puts them; nothing else."""
    return add_missing_keys(load_config(data_dir / CONFIG_NAME))


def is_host(name: str) -> bool:
    """A DNS name or an IP address the server certificate can name."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return is_hostname(name)


def pki_base_url(given: str | None, hostname: str) -> str:
    """Where relying parties fetch the CRL and OCSP: ``given`` or http://HOSTNAME:8080."""
    base = given.rstrip("/") if given else f"http://{hostname}:8080"
    if not base.startswith("http://"):
        raise ManageError("must be a plain http:// URL (CRL/OCSP are fetched over HTTP)")
    return base


def refuse_existing(data_dir: Path) -> None:
    """Refuse a directory that already holds a CA or a config."""
    if any((data_dir / "ca" / f).exists() for f in CA_FILES):
        raise ManageError(f"a CA already exists in {data_dir / 'ca'}; refusing to overwrite it")
    if (data_dir / CONFIG_NAME).exists():
        raise ManageError(f"{data_dir / CONFIG_NAME} already exists; refusing to overwrite it")


def check_database_url(url: str) -> str:
    """A PostgreSQL URL for ``init --database-url`` (SQLite needs none: it is the default)."""
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        driver = None
    if driver != "postgresql+asyncpg":
        raise ManageError("expected postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DATABASE "
                          "(without --database-url, init makes a SQLite database in the data "
                          "directory)")
    return url


def check_ca_passphrase(text: str) -> bytes:
    if len(text) < MIN_CA_PASSPHRASE:
        raise ManageError(f"the CA passphrase must have at least {MIN_CA_PASSPHRASE} characters")
    return text.encode("utf-8")


async def create_data_dir(request: SetupRequest, *, now: datetime) -> DataDir:
    """Create the data directory (0700) with everything a gateway needs to start.

    The file and key work runs in a worker thread (RSA key generation takes a
    while), the database work on the caller's loop.
    """
    data_dir = request.data_dir.expanduser().resolve()
    url = request.database_url or sqlite_url(data_dir / DATABASE_NAME)
    if request.database_url is not None:
        await refuse_installed_database(request.database_url)
    stage = await asyncio.to_thread(_stage, data_dir, request, now)
    try:
        # The database lives at the final path; create it and the first CRL before
        # any file moves into place, so a database failure leaves nothing behind.
        config = load_config(stage / CONFIG_NAME)
        await asyncio.to_thread(add_missing_keys, config)  # in the stage, as the config says
        ca = load_ca(stage / "ca", request.passphrase)
        store = await Store.open(url)
        try:
            await publish_crl(store, ca, validity=config.pki.crl_validity, now=now)
        finally:
            await store.close()
        await asyncio.to_thread(_move_into_place, stage, data_dir,
                                request.database_url is None)
    finally:
        await asyncio.to_thread(shutil.rmtree, stage, ignore_errors=True)
    return DataDir(data_dir, encrypted=request.passphrase is not None,
                   database_url=request.database_url)


async def refuse_installed_database(url: str) -> None:
    """Refuse a database that already holds data: it belongs to another CA's install."""
    filled = await tables_with_data(url)
    if filled:
        raise ManageError(
            f"{safe_url(url)} already holds a certgate install (data in {', '.join(filled)}); "
            "init makes a new CA, which that install would not trust, so nothing was made. "
            "To add a node to it, copy the first node's data directory to this machine and "
            "give it its own `node:` name (docs/deploy.md, \"Adding a node\")")


def _stage(data_dir: Path, request: SetupRequest, now: datetime) -> Path:
    """Everything but the database, built in a staging directory inside ``data_dir``."""
    refuse_existing(data_dir)
    base = request.pki_base_url
    pki_port = base.rsplit(":", 1)[-1] if base.count(":") >= 2 else "80"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    stage = Path(tempfile.mkdtemp(prefix=".certgate-init-", dir=data_dir))
    try:
        _build(stage, request, now=now, pki_listen=f"0.0.0.0:{pki_port}",
               crl_url=f"{base}/crl", ocsp_url=f"{base}/ocsp")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return stage


def _move_into_place(stage: Path, data_dir: Path, sqlite: bool) -> None:
    # The database holds password hashes; SQLite gives its -wal/-shm files the
    # same mode as the database file.
    if sqlite:
        (data_dir / DATABASE_NAME).chmod(0o600)
    for item in sorted(stage.iterdir()):
        os.replace(item, data_dir / item.name)
    (data_dir / "audit").mkdir(mode=0o700, exist_ok=True)


def _build(stage: Path, request: SetupRequest, *, now: datetime, pki_listen: str,
           crl_url: str, ocsp_url: str) -> None:
    hostnames = request.hostnames
    ca, root_key = build_ca(request.ca_name, key_type=request.key_type, now=now)
    save_ca(stage / "ca", ca, root_key, request.passphrase)

    ocsp_key = generate_key("ec-p256")
    ocsp_cert = issue_ocsp_signer(ca, ocsp_key.public_key(), hostname=hostnames[0],
                                  days=OCSP_SIGNER_DAYS, now=now)
    # The OCSP signer must work unattended, so its key is unencrypted (0600).
    write_secret_file(stage / "ca" / "ocsp-key.pem", key_to_pem(ocsp_key, None))
    write_public_file(stage / "ca" / "ocsp.pem", ocsp_cert.public_bytes(Encoding.PEM))

    server_key = generate_key(request.key_type)
    server_cert = issue_server_cert(ca, server_key.public_key(), list(hostnames),
                                    days=SERVER_CERT_DAYS, now=now)
    write_secret_file(stage / "tls" / "server-key.pem", key_to_pem(server_key, None))
    write_public_file(stage / "tls" / "server.pem", server_cert.public_bytes(Encoding.PEM)
                      + ca.issuing_cert.public_bytes(Encoding.PEM))
    (stage / "tls").chmod(0o700)

    write_secret_file(stage / "keys" / "assertion-es256.pem", generate_assertion_key())
    create_audit_key(stage / "audit.key", stage / "audit.pub")
    (stage / "keys").chmod(0o700)

    config_text = CONFIG_TEMPLATE.format(
        database_lines=_database_lines(request), listen=request.listen,
        pki_listen=pki_listen, hostnames=", ".join(hostnames), crl_url=crl_url,
        ocsp_url=ocsp_url)
    write_secret_file(stage / CONFIG_NAME, config_text.encode("utf-8"))


def _database_lines(request: SetupRequest) -> str:
    """The config's ``database_url`` and ``node`` lines (commented out for SQLite)."""
    if request.database_url is None:
        return ("# database_url: postgresql+asyncpg://certgate@db.example.com/certgate"
                "   # several nodes\n"
                "# node: gw1                      # each node its own name (default: host name)")
    # JSON strings are YAML double-quoted scalars: a password's '#' or ':' stays intact.
    node = request.node or default_node()
    return (f"database_url: {json.dumps(request.database_url)}\n"
            f"node: {json.dumps(node)}                     # each node sharing the database "
            "needs its own name")
