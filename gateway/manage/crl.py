"""Publishing a CRL: number from the database, entries from the store, signed, recorded.

Shared by ``certgate crl``, the revocation commands and the server's re-signing at
half-life. thisUpdate strictly increases, like the CRL number.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.store.records import CertStatus
from gateway.store.store import Store
from pki.ca import CertificateAuthority
from pki.crl import RevokedEntry, build_crl, reason_from_name


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
