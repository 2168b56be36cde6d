"""certgate's gateway: the part that runs.

It wires the pure packages together: ``policies`` decides, ``pki`` builds
certificates and revocation data, and this package does all the I/O.

- ``config``   the one frozen, validated ``Config``; nothing else reads the config file
- ``store/``   SQLAlchemy models, Alembic migrations, the async ``Store`` (never on the
               per-request path)
- ``tls``, ``identity``   server TLS context; the in-memory certificate index
- ``paths``, ``headers``, ``routing``, ``upstream``, ``forward``   path normalisation,
               header hygiene, host/route tables, upstream pools, streaming forwarding
- ``proxy``    the one request story: identity -> route -> policy -> forward -> audit
- ``pages``, ``assertion``, ``audit``, ``events``   refusal pages, signed JWT assertions,
               the audit writer, the change feed that keeps memory in step with the database
- ``app``, ``server``   aiohttp application assembly, listeners, workers, reload
- ``cli/``     the ``certgate`` command, one module per noun

Nothing here may block the event loop on the per-request path.
"""
