"""``certgate doctor``: checks an install and says, for each finding, how to fix it.

``run_doctor(config_path, now=...)`` returns ``Finding`` records (pass/warn/fail
and the fix) in a fixed order; ``exit_code`` maps the worst to 0/1/2. The checks
live by what they look at: ``files`` (key files' mode and owner, the audit
spool), ``certs`` (expiry, names, renewal, CRL/OCSP URLs; pure), ``database``
(reachable, migrated, clock skew, CRL, audit chain heads) and ``upstreams`` (TCP
and TLS, concurrently, with a timeout). ``now`` is injected: expiry and renewal
are judged at that moment (tests move it); the clock-skew check reads the real
clock.

Only looks: never writes a file, the database or a mode, and never prints.
"""

from __future__ import annotations

import asyncio
import getpass
from datetime import datetime
from pathlib import Path

from gateway.config import ConfigError, load_config
from gateway.manage.errors import ManageError
from gateway.manage.servers import read_leaf
from gateway.ops.doctor.certs import (
    check_expiry,
    check_pki_urls,
    check_renewal,
    check_server_names,
)
from gateway.ops.doctor.database import check_database
from gateway.ops.doctor.files import (
    check_exposed,
    check_key_files,
    check_spool,
    owner_of,
)
from gateway.ops.doctor.findings import Finding, Status, exit_code, failed, passed, worst
from gateway.ops.doctor.upstreams import check_upstreams
from gateway.ops.renewal import renews_itself
from pki.ca import load_ca_certificates
from pki.keys import PkiError

__all__ = ["Finding", "Status", "exit_code", "run_doctor", "worst"]

_CA_FIX = "a CA can't be renewed in place: build a new one (`certgate init` in a new data " \
          "dir), issue every certificate from it, and move users over before this date"


def _config_failure(config_path: Path, exc: ConfigError) -> Finding:
    """A config that can't be loaded: a missing file is named as such, with --config."""
    if not config_path.exists():
        return failed("config", f"there is no config file {config_path}",
                      "name it: `certgate --config FILE doctor`, or set CERTGATE_CONFIG")
    return failed("config", f"{config_path} is not valid:\n{exc}",
                  "correct the keys named above (`certgate policy check` re-checks)")


async def run_doctor(config_path: Path, *, now: datetime, service_user: str | None = None,
                     within: float = 3.0) -> list[Finding]:
    """Every check, in the order an admin would fix things."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return [_config_failure(config_path, exc)]
    findings = [passed("config", f"{config_path} is valid ({len(config.apps)} app(s))")]
    try:
        user = service_user or owner_of(config.data_dir)
    except OSError as exc:
        user = getpass.getuser()
        findings.append(failed("data-dir", f"the data directory {config.data_dir} can't be "
                                           f"read: {exc.strerror}",
                               "correct data_dir, or restore the directory from your backup"))
    findings += check_key_files(config, user)
    findings += check_exposed(config)
    try:
        root, issuing = load_ca_certificates(config.pki.ca_dir)
    except PkiError as exc:
        findings.append(failed("ca", str(exc), "point pki.ca_dir at the CA directory"))
    else:
        findings.append(check_expiry("root-ca", "the root CA", root, now, _CA_FIX))
        findings.append(check_expiry("issuing-ca", "the issuing CA", issuing, now, _CA_FIX))
    if config.pki.ocsp_signer_cert is not None:
        try:
            signer = read_leaf(config.pki.ocsp_signer_cert)
        except ManageError as exc:
            findings.append(failed("ocsp-signer", str(exc), "restore pki.ocsp_signer_cert"))
        else:
            findings.append(check_expiry(
                "ocsp-signer", "the OCSP signer certificate", signer, now,
                "run `certgate init` with this config after moving the old pair aside "
                "(it adds what is missing), or unset pki.ocsp_signer_cert to sign OCSP with "
                "the CA key"))
    try:
        leaf = read_leaf(config.tls.cert)
    except ManageError as exc:
        findings.append(failed("server-cert", str(exc), "point tls.cert at the gateway's "
                                                        "certificate (`certgate cert "
                                                        "issue-server` makes one)"))
    else:
        why_not = renews_itself(leaf, config)
        findings.append(check_expiry(
            "server-cert", "the server certificate", leaf, now,
            "issue a new one (`certgate cert issue-server NAMES --out NEW.pem`), point "
            "tls.cert and tls.key at it and reload (SIGHUP)" if why_not else
            "start the gateway: it renews its certificate itself when its CA key can be "
            "unlocked"))
        findings.append(check_server_names(config, leaf))
        findings.append(check_renewal(config, leaf, why_not, now))
    report, upstreams = await asyncio.gather(
        check_database(config, now=now, within=within), check_upstreams(config, within))
    findings += report.findings
    if report.reachable:
        findings.append(check_pki_urls(config, report.newest_certificate))
    findings.append(check_spool(config))
    findings += upstreams
    return findings
