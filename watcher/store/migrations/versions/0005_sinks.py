"""sinks: the queue of calls to helpdesk ticket systems, the links to their tickets, poll cursors

Revision ID: 0005_sinks
Revises: 0004_engine_parts
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_sinks"
down_revision = "0004_engine_parts"
branch_labels = None
depends_on = None


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "sink_jobs",
        _id(),
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("sink", sa.String(32), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("claimed_at", sa.Float),
        sa.Column("done_at", sa.Float),
        sa.UniqueConstraint("ticket_id", "sink", "key", name="uq_sink_jobs_once"),
    )
    op.create_index("ix_sink_jobs_state_due", "sink_jobs", ["state", "due_at"])
    op.create_index("ix_sink_jobs_ticket", "sink_jobs", ["ticket_id", "sink"])
    op.create_table(
        "ticket_links",
        sa.Column("ticket_id", sa.String(32), primary_key=True),
        sa.Column("sink", sa.String(32), primary_key=True),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("baseline", sa.Text, nullable=False, server_default="[]"),
        sa.Column("external_status", sa.String(64)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_ticket_links_external", "ticket_links", ["sink", "external_id"])
    op.create_table(
        "sink_cursors",
        sa.Column("sink", sa.String(32), primary_key=True),
        sa.Column("cursor", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sink_cursors")
    op.drop_index("ix_ticket_links_external", "ticket_links")
    op.drop_table("ticket_links")
    op.drop_index("ix_sink_jobs_ticket", "sink_jobs")
    op.drop_index("ix_sink_jobs_state_due", "sink_jobs")
    op.drop_table("sink_jobs")
