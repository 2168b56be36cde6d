"""One sign-in on every app host: sessions remember their host and origin; hand-offs.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without constraints: a plain ALTER TABLE on SQLite and PostgreSQL.
    op.add_column("sessions", sa.Column("host", sa.String(253)))
    op.add_column("sessions", sa.Column("origin", sa.String(64)))
    op.create_index("ix_sessions_origin", "sessions", ["origin"])
    op.create_table(
        "handoffs",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("target_host", sa.String(253), nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime),
    )
    op.create_index("ix_handoffs_expires_at", "handoffs", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_handoffs_expires_at", table_name="handoffs")
    op.drop_table("handoffs")
    op.drop_index("ix_sessions_origin", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("origin")
        batch.drop_column("host")
