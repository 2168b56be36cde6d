"""The public request path: everything between a client's bytes and an upstream's.

- ``proxy``     the one request story: gather facts, admit, answer or forward,
                with audit and metrics in one ``finally``
- ``admit``     the pure decision half: identity -> path -> route -> policy -> outcome
- ``exchange``  what one request did, as audit and metrics see it
- ``paths``, ``headers``   one normal form for paths; header hygiene both ways
- ``routing``, ``upstream``, ``forward``   host/route tables, upstream pools,
                streamed HTTP and WebSocket forwarding
- ``pages``     refusal, help and whoami pages (HTML for people, JSON for API clients)
- ``tls``       the public TLS context and the identity taken from a connection
- ``app``, ``pkiweb``   the public application; the plain-HTTP CRL/OCSP listener

Must not touch ``gateway.store`` (no database round trip per request) nor block the
event loop; everything it needs is in memory, held by the ``Runtime``.
"""
