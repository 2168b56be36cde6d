"""Doctor checks of certificates: expiry (CAs, server, OCSP signer), the server
certificate's names against the apps' hosts, when the gateway renews it, and the
CRL/OCSP URLs issued certificates carry against the config.

Pure: takes parsed certificates, the config and ``now``; reads no file itself.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from cryptography import x509

from gateway.config import Config
from gateway.config.console import routed_apps
from gateway.manage.servers import certificate_names
from gateway.ops.doctor.findings import Finding, failed, passed, warned
from gateway.ops.renewal import renewal_due

WARN_BEFORE = timedelta(days=30)


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def check_expiry(check: str, what: str, cert: x509.Certificate, now: datetime, fix: str
                 ) -> Finding:
    """Fail once expired (or not yet valid), warn within 30 days."""
    end = cert.not_valid_after_utc
    if now >= end:
        return failed(check, f"{what} expired on {_when(end)}", fix)
    if now < cert.not_valid_before_utc:
        return failed(check, f"{what} is valid only from {_when(cert.not_valid_before_utc)}; "
                             "is this machine's clock right?",
                      "set the clock (NTP), or issue the certificate again")
    left = end - now
    if left < WARN_BEFORE:
        return warned(check, f"{what} expires in {left.days} day(s), on {_when(end)}", fix)
    return passed(check, f"{what} is valid until {_when(end)} ({left.days} days)")


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a SAN list covers ``host`` (a ``*.`` wildcard matches one label)."""
    host = host.lower().rstrip(".")
    for name in (n.lower() for n in names):
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    try:  # 127.0.0.1 and its spellings
        return any(ipaddress.ip_address(host) == ipaddress.ip_address(n) for n in names
                   if _is_ip(n))
    except ValueError:
        return False


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_server_names(config: Config, cert: x509.Certificate) -> Finding:
    """Every app host and public hostname must be in the server certificate, or
    browsers refuse the gateway on that name."""
    names = certificate_names(cert)
    wanted = sorted({app.host for app in routed_apps(config)} | set(config.public_hostnames))
    missing = [host for host in wanted if not covers(names, host)]
    if missing:
        return failed("server-names",
                      f"the server certificate {config.tls.cert} does not name "
                      f"{', '.join(missing)}; browsers refuse the gateway on "
                      f"{'that name' if len(missing) == 1 else 'those names'}",
                      "issue one that names every host: `certgate cert issue-server "
                      f"{' '.join([*names, *missing])} --out NEW.pem`, point tls.cert and "
                      "tls.key at it and reload (SIGHUP)")
    return passed("server-names", f"the server certificate names all {len(wanted)} host(s) "
                                  "of the apps and public_hostnames")


def check_renewal(config: Config, cert: x509.Certificate, why_not: str | None,
                  now: datetime) -> Finding:
    """When the gateway renews its certificate itself, or why it won't."""
    if why_not is not None:
        return passed("renewal", f"the gateway does not renew {config.tls.cert} itself "
                                 f"({why_not}): renew it before {_when(cert.not_valid_after_utc)}"
                                 " and reload")
    due = renewal_due(cert, config.tls.renew_at)
    if now >= due:
        return warned("renewal", f"the server certificate was due for renewal on {_when(due)} "
                                 "and has not been renewed",
                      "start the gateway (it renews at once when its CA key can be unlocked; "
                      "set pki.ca_passphrase_file for an encrypted key) and see its log")
    return passed("renewal", f"the gateway renews the server certificate itself on "
                             f"{_when(due)} ({config.tls.renew_at:.0%} of its lifetime)")


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for point in points for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)]


def _ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [str(d.access_location.value) for d in aia
            if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP]


def check_pki_urls(config: Config, newest: x509.Certificate | None) -> Finding:
    """The CRL and OCSP URLs in the newest issued client certificate are the config's."""
    if config.pki_listen is None and (config.pki.crl_url or config.pki.ocsp_url):
        return warned("pki-urls", "pki.crl_url/pki.ocsp_url are set but pki_listen is not: "
                                  "this node serves neither",
                      "set pki_listen (e.g. \"0.0.0.0:80\"), or make sure another server "
                      "publishes the CRL and OCSP at those URLs")
    if newest is None:
        return passed("pki-urls", "no client certificate has been issued yet")
    problems = []
    for what, found, configured in (("CRL distribution point", _crl_urls(newest),
                                     config.pki.crl_url),
                                    ("OCSP URL", _ocsp_urls(newest), config.pki.ocsp_url)):
        expected = [configured] if configured else []
        if found != expected:
            problems.append(f"its {what} is {', '.join(found) or 'absent'} but the config "
                            f"says {configured or 'none'}")
    serial = f"{newest.serial_number:X}"
    if problems:
        return warned("pki-urls", f"the newest client certificate ({serial}) does not match "
                                  f"the config: {'; '.join(problems)}",
                      "relying parties fetch the URLs in the certificates: serve those too, "
                      "or put pki.crl_url/pki.ocsp_url back, or renew the certificates "
                      "(`certgate cert renew SERIAL`) after changing them")
    return passed("pki-urls", f"the newest client certificate ({serial}) carries the CRL and "
                              "OCSP URLs of the config")
