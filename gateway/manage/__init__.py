"""The admin's use-cases, shared by the CLI and (next) the web console.

- ``ca``     where the online CA key's passphrase comes from, and loading the CA
- ``crl``    publishing a new CRL: number, entries, signature, record

Functions here take plain values (a passphrase, an output path, ``now``) and
return records. They never prompt, print or exit: that is ``gateway.cli``'s job.
"""
