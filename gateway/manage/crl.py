"""Publishing a CRL: number from the database, entries from the store, signed, recorded.

Shared by ``certgate crl``, the revocation use-cases and the server's re-signing at
half-life. thisUpdate strictly increases, like the CRL number.

Never prompts or prints: ``republish_crl`` returns what happened as a ``CrlNote``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.config import Config
from gateway.manage.ca import CaLoader
from gateway.store.records import CertStatus
from gateway.store.store import Store
from pki.ca import CertificateAuthority
from pki.crl import RevokedEntry, build_crl, reason_from_name
from pki.keys import PkiError


@dataclass(frozen=True, slots=True)
class CrlNote:
    """What happened to the CRL after a revocation: published (its number) or why not."""

    number: int | None
    problem: str | None = None

    @property
    def published(self) -> bool:
        return self.number is not None

    @property
    def message(self) -> str:
        if self.number is not None:
            return f"published CRL number {self.number}"
        return (f"the CRL was not re-signed ({self.problem}); run `certgate crl` or let the "
                "server re-sign it")


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


async def publish_crl(store: Store, ca: CertificateAuthority, *, validity: timedelta,
                      now: datetime) -> x509.CertificateRevocationList:
    """Sign and record the next CRL; ``now`` is the caller's clock reading."""
    entries = []
    for cert in await store.revoked_certificates():
        if cert.status is CertStatus.SUSPENDED:
            reason: x509.ReasonFlags | None = x509.ReasonFlags.certificate_hold
        else:
            reason = reason_from_name(cert.reason) if cert.reason else None
        entries.append(RevokedEntry(cert.serial, cert.revoked_at or now, reason,
                                    cert.invalidity_date))
    this_update = now.replace(microsecond=0)
    previous = await store.latest_crl()
    if previous is not None and this_update <= previous[1]:
        # Two publications within one second (CRL times have 1 s resolution):
        # wait for the clock rather than date the CRL in the future, where relying
        # parties would call it "not yet valid".
        this_update = previous[1] + timedelta(seconds=1)
        await asyncio.sleep(max(0.0, (this_update - now).total_seconds()))
    number = await store.next_crl_number()
    crl = build_crl(ca, entries, number=number, this_update=this_update,
                    next_update=this_update + validity)
    await store.record_crl(number, this_update, this_update + validity,
                           crl.public_bytes(Encoding.DER))
    return crl


async def republish_crl(store: Store, config: Config, load_ca: CaLoader, *,
                        now: datetime) -> CrlNote:
    """Publish a CRL after a revocation; when the CA key is out of reach, say why.

    The revocation itself already stands (the gateways enforce it from the store);
    only relying parties that read the CRL wait for the next publication.
    """
    try:
        ca = load_ca()
    except PkiError as exc:
        return CrlNote(None, str(exc))
    crl = await publish_crl(store, ca, validity=config.pki.crl_validity, now=now)
    return CrlNote(crl_number(crl))
