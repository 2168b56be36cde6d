"""The audit trail: one record per decision, written off the request path.

- ``writer``   the ``AuditRecord`` and the batching, append-only file writer

Emitting a record never blocks and never raises into the request; the writer
owns the file and its ordering.
"""
