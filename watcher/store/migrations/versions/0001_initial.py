"""initial schema: inbox, engine state, tickets, outbox, link uses

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _pk() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("seq", _pk(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("occ_key", sa.String(255), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.UniqueConstraint("occ_key", name="uq_inbox_occ_key"),
    )
    op.create_table(
        "engine_state",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("site", sa.String(128)),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_tickets_status", "tickets", ["status"])
    op.create_index("ix_tickets_client_opened", "tickets", ["client", "opened_at"])
    op.create_table(
        "outbox",
        sa.Column("id", _pk(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.Float),
        sa.Column("channel", sa.String(64)),
        sa.Column("claimed_at", sa.Float),
        sa.UniqueConstraint("ticket_id", "recipient", "kind", name="uq_outbox_once"),
    )
    op.create_index("ix_outbox_state_due", "outbox", ["state", "due_at"])
    op.create_table(
        "link_uses",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("used_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for name in ("link_uses", "outbox", "tickets", "engine_state", "inbox"):
        op.drop_table(name)
