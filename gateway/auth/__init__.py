"""Proving who a person is beyond the certificate, and telling upstreams who they are.

- ``passwords``  argon2id hashing and the password strength rule
- ``assertion``  short-lived ES256 JWTs for upstreams and their JWKS

Must not do I/O on the request path beyond what is already in memory, and never
logs a secret (passwords, codes, keys, tokens).
"""
