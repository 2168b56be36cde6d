"""The database: SQLAlchemy 2 (async) models, Alembic migrations, the ``Store``.

- ``records``     frozen dataclasses the rest of certgate sees (no ORM objects leak out)
- ``errors``      ``StoreError`` and its kinds, each one sentence for a person
- ``db``          engines (SQLite WAL by default, PostgreSQL for several nodes), migrations
- ``tables``      the table definitions the store queries
- ``base``        ``StoreBase``: the engine, one transaction (``_tx``), the event append
- ``users``       users and groups
- ``certs``       certificates and their status moves (revoke, suspend, resume, renew)
- ``feed``        CRL numbers and records, the event feed, the identity snapshot
- ``audit``       the audit trail: chained records and checkpoints, appended and read back
- ``store``       ``Store``: the three composed, plus ``open``/``close``

The store is never called on the per-request path: the gateway loads a snapshot at
start and follows the ``events`` table, which every mutation writes in its own
transaction.
"""
