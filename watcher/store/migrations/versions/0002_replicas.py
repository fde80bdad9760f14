"""replicas: an epoch that fences the engine's writes, and op results readable by every replica

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("engine_state") as batch:
        batch.add_column(sa.Column("epoch", sa.BigInteger, nullable=False, server_default="0"))
    op.create_table(
        "op_results",
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("op_results")
    with op.batch_alter_table("engine_state") as batch:
        batch.drop_column("epoch")
