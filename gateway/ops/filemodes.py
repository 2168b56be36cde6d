"""Start-up checks of who may read the files the gateway holds secrets in.

Key files (TLS, assertion, the online CA key and, while it is still on this
machine, the root key; the OCSP signer key; the CA passphrase file; the audit key;
the mail relay's password file) that group or others may read stop the start, as
the CLI already refuses them: ``check_secret_files`` raises ``InsecureFileError``
naming the file and the ``chmod`` to run. The config file and the SQLite database
hold no keys (the database keeps password hashes and encrypted TOTP secrets), and an
install that works must not stop working after an upgrade, so a world-readable one
is one loud warning line each, with the ``chmod``.

Only looks (stat); must not change a mode itself: the admin decides.
"""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.config import Config
from pki.ca import ISSUING_KEY, ROOT_KEY
from pki.keys import check_secret_mode


def secret_files(config: Config) -> list[Path]:
    """Every key or passphrase file the config names or implies, in the order checked."""
    pki = config.pki
    files = [config.tls.key, config.assertion.key, pki.ca_dir / ISSUING_KEY]
    if (pki.ca_dir / ROOT_KEY).exists():  # absent once the root key went offline
        files.append(pki.ca_dir / ROOT_KEY)
    files += [f for f in (pki.ocsp_signer_key, pki.ca_passphrase_file) if f is not None]
    files.append(config.audit.key)  # checked when present: older installs lack it
    if config.mail is not None and config.mail.password_file is not None:
        files.append(config.mail.password_file)  # the SMTP relay's password
    return files


def check_secret_files(config: Config) -> None:
    """Refuse to start on a key file group or others may read (``InsecureFileError``).
    A missing file is left to the code that loads it, which names it in its own error."""
    for path in secret_files(config):
        if path.exists():
            check_secret_mode(path)


def database_file(config: Config) -> Path | None:
    url = make_url(config.database_url)
    if not url.drivername.startswith("sqlite") or not url.database \
            or url.database == ":memory:":
        return None
    return Path(url.database)


def exposed_files(config: Config) -> list[str]:
    """One warning line per world-readable config or database file, naming the fix."""
    lines = []
    candidates = [(config.file, "the config")]
    if (db := database_file(config)) is not None:
        candidates += [(db, "the database"), (Path(f"{db}-wal"), "the database's WAL")]
    for path, what in candidates:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o004:
            lines.append(f"{path} ({what}) is readable by every user of this machine "
                         f"(mode {mode:04o}); run chmod 600 {path}")
    return lines
