"""secrets: a generated link key shared by replicas, retry windows of ingest, HMAC signatures
seen, notifier heartbeats and the owner of each outbox claim

Revision ID: 0009_secrets
Revises: 0008_quarantine
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_secrets"
down_revision = "0008_quarantine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "ingest_keys",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_ingest_keys_expires", "ingest_keys", ["expires_at"])
    op.create_table(
        "seen_signatures",
        sa.Column("signature", sa.String(128), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_seen_signatures_expires", "seen_signatures", ["expires_at"])
    op.create_table(
        "notifiers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
    op.drop_table("notifiers")
    op.drop_table("seen_signatures")
    op.drop_table("ingest_keys")
    op.drop_table("secrets")
