"""certgate's gateway: the part that runs.

It wires the pure packages together: ``policies`` decides, ``pki`` builds
certificates and revocation data, and this package does all the I/O. The top
level holds wiring only; each capability is a sub-package whose docstring says
what it owns and what it must not do.

- ``config``, ``runtime``, ``server``   the validated ``Config``; the swappable
               ``State`` and the long-lived parts; listeners, workers, reload, drain
- ``lifecycle`` the setup-``yield``-teardown building blocks both of those stack
- ``http/``     the request path: proxy story, paths, headers, routing, forwarding,
               pages, TLS, the public and PKI applications
- ``identity/`` the in-memory certificate index and the change-feed follower
- ``auth/``     passwords and the signed assertion for upstreams
- ``audit/``    the audit record, the hash chain, the writer, checkpoints, verify
- ``ops/``      metrics and the admin listener (health, readiness)
- ``manage/``   the admin's use-cases, shared by the CLI and the console
- ``store/``    SQLAlchemy tables, Alembic migrations, the async ``Store``
- ``cli/``      the ``certgate`` command: parse, call ``manage/``, print
- ``demo/``     the sample upstreams of ``certgate demo``

Dependency rule: nothing imports ``cli``; ``http`` never imports ``store``.
Nothing may block the event loop on the per-request path.
"""
