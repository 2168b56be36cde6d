"""The console's one-time download links for a new person's .p12.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "download_links",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("serial", sa.String(40),
                  sa.ForeignKey("certificates.serial", ondelete="CASCADE"), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("p12", sa.LargeBinary),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime),
    )
    op.create_index("ix_download_links_expires_at", "download_links", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_download_links_expires_at", table_name="download_links")
    op.drop_table("download_links")
