"""certgate's CA, as pure builders over ``cryptography``.

- ``keys``  key generation, (encrypted) PEM, secret files kept at 0600
- ``ca``    ``CertificateAuthority`` (root + issuing intermediate, pathLen 0) and the
            certificates it signs: client, server, delegated OCSP responder, CSRs
- ``p12``   PKCS#12 bundles (``modern`` and ``compat`` profiles)
- ``crl``   RFC 5280 CRLs and revocation reason names
- ``ocsp``  RFC 6960 responses from a status lookup

This package never imports ``gateway`` and never talks to a database.
"""
