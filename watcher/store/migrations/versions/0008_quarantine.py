"""quarantine: items the engine set aside; ticket columns wide enough for any label ingest keeps

Revision ID: 0008_quarantine
Revises: 0007_reports
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_quarantine"
down_revision = "0007_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_quarantine_seq", "quarantine", ["seq"])
    if op.get_bind().dialect.name == "postgresql":  # SQLite does not enforce VARCHAR lengths
        op.alter_column("tickets", "client", type_=sa.Text)
        op.alter_column("tickets", "site", type_=sa.Text)


def downgrade() -> None:
    op.drop_index("ix_quarantine_seq", "quarantine")
    op.drop_table("quarantine")
