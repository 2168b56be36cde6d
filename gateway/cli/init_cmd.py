"""``certgate init``: a new data directory with CA, server certificate, keys, config, database.

Everything is built in a staging directory and moved into place only once the
database is ready, so a failure leaves no half-made CA behind. Refuses to touch a
directory that already holds a CA or a config.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from pathlib import Path

import click
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.auth.assertion import generate_assertion_key
from gateway.cli.common import CliError, now, read_secret_argument, run, warn
from gateway.config import HostPort, load_config
from gateway.manage.crl import publish_crl
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
SERVER_CERT_DAYS = 397
OCSP_SIGNER_DAYS = 397

CONFIG_TEMPLATE = """\
# certgate configuration, written by `certgate init`.
# Relative paths are relative to the directory holding this file.
# Check it with `certgate policy check`; reload a running gateway with SIGHUP.
data_dir: .
# database_url: postgresql+asyncpg://certgate@db.example.com/certgate   # several nodes
listen: "{listen}"
admin_listen: "127.0.0.1:9443"    # /healthz, /readyz, /metrics (keep it on loopback)
pki_listen: "{pki_listen}"        # plain HTTP: the CRL and OCSP only
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
  path: audit/audit.jsonl

apps: []
# apps:
#   - name: wiki
#     host: wiki.example.com
#     upstream: http://10.0.0.10:8080
#     allow:
#       - groups: [staff]
"""


def _hostname_ok(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return is_hostname(name)


_EPILOG = """\b
EXAMPLES
  certgate init --data-dir /var/lib/certgate --hostname gw.example.com
  certgate init --data-dir ./gw --hostname gw.example.com --hostname 203.0.113.7 \\
      --ca-name "Example Corp" --ca-passphrase-file /root/ca-pass --key-type rsa3072
"""


@click.command("init", epilog=_EPILOG)
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to create (CA, keys, config, database).")
@click.option("--hostname", "hostnames", multiple=True, required=True,
              help="Public name of the gateway (repeatable); the first names the CRL/OCSP URLs.")
@click.option("--ca-name", default="certgate", show_default=True,
              help="Organisation name used in the CA certificates.")
@click.option("--key-type", type=click.Choice(["ec-p256", "rsa3072"]), default="ec-p256",
              show_default=True, help="Key type for the CA and server certificate.")
@click.option("--ca-passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File whose first line encrypts the CA keys "
                   "(else $CERTGATE_CA_PASSPHRASE, else a prompt).")
@click.option("--no-ca-passphrase", is_flag=True,
              help="Store the CA keys unencrypted (0600 files). Not for production.")
@click.option("--listen", default="0.0.0.0:8443", show_default=True,
              help="Public TLS listener written to the config.")
@click.option("--pki-url", default=None,
              help="Base URL of the CRL/OCSP listener (default http://HOSTNAME:8080).")
def init(data_dir: Path, hostnames: tuple[str, ...], ca_name: str, key_type: KeyType,
         ca_passphrase_file: Path | None, no_ca_passphrase: bool, listen: str,
         pki_url: str | None) -> None:
    """Create a CA, the gateway's certificate and keys, a config and a database."""
    for name in hostnames:
        if not _hostname_ok(name):
            raise click.BadParameter(f"'{name}' is not a hostname or IP address",
                                     param_hint="--hostname")
    try:
        HostPort.parse_text(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    base = pki_url.rstrip("/") if pki_url else f"http://{hostnames[0]}:8080"
    if not base.startswith("http://"):
        raise click.BadParameter("must be a plain http:// URL (CRL/OCSP are fetched over HTTP)",
                                 param_hint="--pki-url")
    if ca_passphrase_file and no_ca_passphrase:
        raise click.UsageError("--ca-passphrase-file and --no-ca-passphrase exclude each other")
    data_dir = data_dir.expanduser().resolve()
    if any((data_dir / "ca" / f).exists() for f in CA_FILES):
        raise CliError(f"a CA already exists in {data_dir / 'ca'}; refusing to overwrite it")
    if (data_dir / CONFIG_NAME).exists():
        raise CliError(f"{data_dir / CONFIG_NAME} already exists; refusing to overwrite it")

    passphrase: bytes | None = None
    if no_ca_passphrase:
        warn("the CA keys will be stored WITHOUT a passphrase; anyone who can read "
             f"{data_dir / 'ca'} can issue certificates. Use this only for demos and tests.")
    else:
        text = read_secret_argument(ca_passphrase_file, "CERTGATE_CA_PASSPHRASE",
                                    "CA key passphrase", confirm=True)
        if not text:
            raise CliError("the CA key needs a passphrase: pass --ca-passphrase-file, set "
                           "CERTGATE_CA_PASSPHRASE, or use --no-ca-passphrase for a demo")
        if len(text) < 12:
            raise CliError("the CA passphrase must have at least 12 characters")
        passphrase = text.encode("utf-8")

    pki_port = base.rsplit(":", 1)[-1] if base.count(":") >= 2 else "80"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    stage = Path(tempfile.mkdtemp(prefix=".certgate-init-", dir=data_dir))
    try:
        _build(stage, hostnames=hostnames, ca_name=ca_name, key_type=key_type,
               passphrase=passphrase, listen=listen, pki_listen=f"0.0.0.0:{pki_port}",
               crl_url=f"{base}/crl", ocsp_url=f"{base}/ocsp")
        # The database lives at the final path; create it and the first CRL before
        # any file moves into place, so a database failure leaves nothing behind.
        config = load_config(stage / CONFIG_NAME)
        db_url = f"sqlite+aiosqlite:///{data_dir / 'certgate.db'}"
        ca = load_ca(stage / "ca", passphrase)

        async def _db() -> None:
            store = await Store.open(db_url)
            try:
                await publish_crl(store, ca, validity=config.pki.crl_validity, now=now())
            finally:
                await store.close()

        run(_db)
        # The database holds password hashes; SQLite gives its -wal/-shm files the
        # same mode as the database file.
        (data_dir / "certgate.db").chmod(0o600)
        for item in sorted(stage.iterdir()):
            os.replace(item, data_dir / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    (data_dir / "audit").mkdir(mode=0o700, exist_ok=True)
    click.echo(f"created {data_dir}")
    click.echo(f"  CA            {data_dir / 'ca'} (root + issuing CA, keys "
               f"{'encrypted' if passphrase else 'NOT encrypted'})")
    click.echo(f"  server cert   {data_dir / 'tls' / 'server.pem'} for {', '.join(hostnames)}")
    click.echo(f"  config        {data_dir / CONFIG_NAME}")
    click.echo(f"  database      {data_dir / 'certgate.db'}")
    click.echo("next steps:")
    cfg = data_dir / CONFIG_NAME
    click.echo(f"  export CERTGATE_CONFIG={cfg}")
    click.echo("  certgate user add alice --email alice@example.com --group staff")
    click.echo("  certgate cert issue alice --out alice.p12")
    click.echo("  move ca/root-key.pem offline: see `certgate ca export-root --help`")


def _build(stage: Path, *, hostnames: tuple[str, ...], ca_name: str, key_type: KeyType,
           passphrase: bytes | None, listen: str, pki_listen: str, crl_url: str,
           ocsp_url: str) -> None:
    at = now()
    ca, root_key = build_ca(ca_name, key_type=key_type, now=at)
    save_ca(stage / "ca", ca, root_key, passphrase)

    ocsp_key = generate_key("ec-p256")
    ocsp_cert = issue_ocsp_signer(ca, ocsp_key.public_key(), hostname=hostnames[0],
                                  days=OCSP_SIGNER_DAYS, now=at)
    # The OCSP signer must work unattended, so its key is unencrypted (0600).
    write_secret_file(stage / "ca" / "ocsp-key.pem", key_to_pem(ocsp_key, None))
    write_public_file(stage / "ca" / "ocsp.pem", ocsp_cert.public_bytes(Encoding.PEM))

    server_key = generate_key(key_type)
    server_cert = issue_server_cert(ca, server_key.public_key(), list(hostnames),
                                    days=SERVER_CERT_DAYS, now=at)
    write_secret_file(stage / "tls" / "server-key.pem", key_to_pem(server_key, None))
    write_public_file(stage / "tls" / "server.pem", server_cert.public_bytes(Encoding.PEM)
                      + ca.issuing_cert.public_bytes(Encoding.PEM))
    (stage / "tls").chmod(0o700)

    write_secret_file(stage / "keys" / "assertion-es256.pem", generate_assertion_key())
    (stage / "keys").chmod(0o700)

    config_text = CONFIG_TEMPLATE.format(
        listen=listen, pki_listen=pki_listen, hostnames=", ".join(hostnames),
        crl_url=crl_url, ocsp_url=ocsp_url)
    write_secret_file(stage / CONFIG_NAME, config_text.encode("utf-8"))

