"""What the listeners expose, said once at start: an admin listener reachable from
other machines is a warning; the PKI listener on every address is stated, because
serving the CRL and OCSP to anyone is its job.

Pure: reads the config, returns sentences; the caller logs them.
"""

from __future__ import annotations

import ipaddress

from gateway.config import Config


def _local_only(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: may resolve to anything


def exposure(config: Config) -> tuple[list[str], list[str]]:
    """(warnings, notes) about who can reach the admin and PKI listeners."""
    warnings: list[str] = []
    notes: list[str] = []
    admin = config.admin_listen
    if not _local_only(admin.host):
        warnings.append(
            f"admin_listen {admin} is reachable from other machines: it serves /metrics, "
            "/healthz, /readyz and /jwks.json without a certificate; keep it on "
            "127.0.0.1 or allow only your monitoring host in the firewall")
    pki = config.pki_listen
    if pki is not None and not _local_only(pki.host):
        notes.append(f"pki_listen {pki} serves the CRL and OCSP over plain HTTP to anyone "
                     "who can reach it (relying parties fetch them there); nothing else is "
                     "served on it")
    return warnings, notes
