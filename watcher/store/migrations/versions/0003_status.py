"""status: the engine leader's published figures, read alike by every worker and replica

Revision ID: 0003_status
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_status"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_status",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("leader", sa.String(255), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        *(sa.Column(c, sa.BigInteger, nullable=False)
          for c in ("open_tickets", "groups", "alerts", "unbound", "unrouted", "silenced")),
        sa.Column("leader_since", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("engine_status")
