"""reports: each client's monthly report with its PDF, once per client and month

Revision ID: 0007_reports
Revises: 0006_feeds
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_reports"
down_revision = "0006_feeds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("pdf", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("client", "month", name="uq_reports_client_month"),
    )


def downgrade() -> None:
    op.drop_table("reports")
