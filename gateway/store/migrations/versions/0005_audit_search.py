"""Indexes for ``certgate audit search``: each filter finds its records newest first.

Revision ID: 0005
Revises: 0004

Every filter of the search has an index that starts with it and ends with ``at``, so
"alice's records of the last 30 days, newest first" reads only those index entries,
in order, and stops at ``--limit``. The single-column ``user`` and ``app`` indexes of
0004 are covered by the new (user, at) and (app, at) and are dropped; (at) and
(reference) stay.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# (name, columns): kept equal to the Index entries of ``audit_records`` in tables.py.
SEARCH_INDEXES = (
    ("ix_audit_records_user_at", ["user", "at"]),
    ("ix_audit_records_app_at", ["app", "at"]),
    ("ix_audit_records_serial_at", ["serial", "at"]),
    ("ix_audit_records_type_at", ["type", "at"]),
    ("ix_audit_records_decision_at", ["decision", "at"]),
)


def upgrade() -> None:
    op.drop_index("ix_audit_records_user", table_name="audit_records")
    op.drop_index("ix_audit_records_app", table_name="audit_records")
    for name, columns in SEARCH_INDEXES:
        op.create_index(name, "audit_records", columns)


def downgrade() -> None:
    for name, _columns in SEARCH_INDEXES:
        op.drop_index(name, table_name="audit_records")
    op.create_index("ix_audit_records_user", "audit_records", ["user"])
    op.create_index("ix_audit_records_app", "audit_records", ["app"])
