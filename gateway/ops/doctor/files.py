"""Doctor checks of files on this machine: key files' mode and owner, exposed
config/database files, and audit records left in the spool.

Only looks (stat, glob); never changes a mode or owner and never reads a key.
"""

from __future__ import annotations

import pwd
import stat
from pathlib import Path

from gateway.config import Config
from gateway.ops.doctor.findings import Finding, failed, passed, warned
from gateway.ops.filemodes import exposed_files, secret_files


def owner_of(path: Path) -> str:
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no name for this uid (a container's volume)
        return str(uid)


def _init_fix(config: Config) -> str:
    return f"run `certgate --config {config.file} init --data-dir {config.data_dir}`: it adds " \
           "the missing keys and replaces none"


def check_key_files(config: Config, service_user: str) -> list[Finding]:
    """Each key or passphrase file: present, 0600 (no group/other bits), owned by the
    user the gateway runs as (a 0600 key owned by another user is unreadable to it)."""
    optional = {config.audit.key, config.auth.secrets_key}  # installs from before them
    files = [*secret_files(config), config.auth.secrets_key]
    problems: list[Finding] = []
    for path in files:
        check = f"key-file:{path.name}"
        try:
            info = path.stat()
        except FileNotFoundError:
            if path in optional:
                problems.append(warned(check, f"{path} does not exist", _init_fix(config)))
            else:
                problems.append(failed(check, f"{path} does not exist; the gateway can't start "
                                              "without it", "restore it from your backup, or "
                                       "point the config at the right file"))
            continue
        except OSError as exc:
            problems.append(failed(check, f"cannot look at {path}: {exc.strerror}",
                                   f"make {path} readable by {service_user}"))
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            problems.append(failed(check, f"{path} is readable by group or others (mode "
                                          f"{mode:04o}); the gateway refuses to start",
                                   f"run chmod 600 {path}"))
        owner = owner_of(path)
        if owner != service_user:
            problems.append(failed(check, f"{path} is owned by {owner}, not by {service_user} "
                                          "(the user certgate runs as)",
                                   f"run chown {service_user} {path}"))
    if problems:
        return problems
    return [passed("key-files", f"{len(files)} key files are mode 0600 and owned by "
                                f"{service_user}")]


def check_exposed(config: Config) -> list[Finding]:
    """The config and SQLite files: world-readable is a warning each (no keys in them)."""
    return [warned("exposed-file", line.split("; run ")[0], "run " + line.split("; run ")[1])
            for line in exposed_files(config)]


def spool_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.glob("audit-spool*.jsonl") if p.stat().st_size > 0)


def check_spool(config: Config) -> Finding:
    """Audit records waiting in a spool never reached the audit log (yet)."""
    spooled = spool_files(config.data_dir)
    if not spooled:
        return passed("audit-spool", "no audit records are waiting in a spool")
    lines = 0
    for path in spooled:
        with path.open("rb") as fh:
            lines += sum(1 for _ in fh)
    names = ", ".join(p.name for p in spooled)
    return warned("audit-spool", f"{lines} audit record(s) are waiting in {names} in "
                                 f"{config.data_dir}: the database could not be written",
                  "make the database reachable; the running gateway (or the next start) "
                  "writes the spool into the audit log and removes the file")
