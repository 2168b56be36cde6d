"""Who a connection is: the in-memory index of certificates and users, kept current.

- ``index``     fingerprint -> ``Identity`` or the ``Reason`` to refuse; pure, per request
- ``follower``  follows the database's change feed and applies it to the index

Owns the in-memory view only; the database stays the source of truth, and the
per-request path never waits on it.
"""
