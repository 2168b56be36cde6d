"""The audit trail: one record per event, chained per node, written off the request path.

- ``record``       the ``AuditRecord`` the gateway emits (cheap to build per request)
- ``chain``        the canonical encoding and the per-node SHA-256 hash chain (pure)
- ``writer``       the queue and the batching writer: chains each record as it leaves
                   the queue, writes it to every destination, keeps everything through
                   failures (memory, then the spool), drains on close
- ``sinks``        the destinations: the ``audit_records`` table, the optional JSON lines
- ``spool``        the local file holding chained records no destination took yet
- ``checkpoint``   signed checkpoints: payload, signature, check (pure)
- ``checkpointer`` when and where the writer puts checkpoints (table and file)
- ``keys``         the Ed25519 audit key pair (``audit.key`` 0600, ``audit.pub``)
- ``verify``       checking one node's chain and checkpoints, record by record (pure)
- ``destination``  the load-time check that a file destination can be written at all
- ``query``        ``AuditQuery``: the filters of ``audit search`` in stored form
- ``bundle``       the export bundle's format: JSON lines, the CSV cells (pure)
- ``bundle_check`` checking a bundle offline with ``NodeVerifier`` and the public key
- ``direct``       chaining records straight into the table, for a process without a
                   writer (the CLI's admin changes, on ``<node>.cli``)
- ``events``       the records a gateway writes about itself: start, stop, reload
- ``syslog``       the RFC 5424 forward of records and checkpoints to a SIEM (a copy
                   with its own bounded buffer; never waited for)
- ``retention``    deleting a node's oldest records behind a signed checkpoint, recorded
- ``assembly``     this process's writer, checkpointer, syslog forward and retention,
                   built from the config (the runtime starts and supervises them)

Emitting a record never blocks and never raises into the request; the writer
owns numbering, hashing and ordering. Nothing here runs a query itself except
through the store methods the writer is handed.
"""
