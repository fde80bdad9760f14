"""feeds: when each expected source last spoke, and the silence already announced

Revision ID: 0006_feeds
Revises: 0005_sinks
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_feeds"
down_revision = "0005_sinks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("last_seen", sa.Float),
        sa.Column("silent_since", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feeds")
