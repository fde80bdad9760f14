"""engine_parts: the engine's alerts and groups as rows, written as they change

Revision ID: 0004_engine_parts
Revises: 0003_status
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_engine_parts"
down_revision = "0003_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_parts",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("engine_parts")
