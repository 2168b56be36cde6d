"""The audit trail: one record per decision, written off the request path.

- ``writer``       the ``AuditRecord`` and the batching, append-only file writer that
                   keeps every record through a failing disk
- ``spool``        the local file holding records the audit log could not take yet
- ``destination``  the load-time check that the audit log can be written at all

Emitting a record never blocks and never raises into the request; the writer
owns the file and its ordering.
"""
