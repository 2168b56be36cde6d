"""The admin's use-cases, shared by the CLI and (next) the web console.

- ``certs``    issue (.p12), sign a CSR, renew, revoke, suspend, resume a certificate
- ``bundles``  a new key, its certificate and the 0600 PKCS#12 file holding both
- ``users``    add a user, disable/enable, set a password, set groups; the name checks
- ``crl``      publishing a new CRL: number, entries, signature, record; the note after
               a revocation
- ``ca``       where the online CA key's passphrase comes from, and loading the CA
- ``root``     moving the root key offline
- ``setup``    a new data directory: CA, server certificate, keys, config, database
- ``servers``  a new TLS certificate and key for the gateway's own names
- ``errors``   ``ManageError``, the one-sentence refusal

Functions here take plain values (a passphrase, an output path, ``now``, a CA
loader) and return frozen records. They never prompt, print or exit: that is
``gateway.cli``'s job (and the console's). Must not import ``gateway.cli`` or
``gateway.http``.
"""
