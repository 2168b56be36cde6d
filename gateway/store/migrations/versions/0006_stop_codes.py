"""Stop codes: one per certificate, to suspend it without it ("I lost my USB stick").

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stop_codes",
        sa.Column("serial", sa.String(40),
                  sa.ForeignKey("certificates.serial", ondelete="CASCADE"), primary_key=True),
        sa.Column("code_hash", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime),
    )


def downgrade() -> None:
    op.drop_table("stop_codes")
