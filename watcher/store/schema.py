"""The tables watcher keeps, as SQLAlchemy Core metadata (the Alembic migrations create them).

* ``inbox``: every accepted event and operation, in arrival order; the durable log that a
  2xx answer promises.  ``occ_key`` is unique, so a re-sent occurrence is stored once.
* ``engine_state``: the rule engine's working state and how far into the inbox it got,
  written in the same transaction as the tickets and notices it produced.
* ``engine_parts``: the engine's alerts and groups, a row each, so that a commit writes
  the entries that changed rather than the whole state (``engine_state`` keeps the rest).
* ``tickets``: the tickets as the API shows them (the document in ``data``, plus columns
  to filter on).
* ``outbox``: notifications owed and given; (ticket, recipient, kind) is unique, so a
  person is never told the same thing twice, whatever restarts or replicas do.
* ``link_uses``: nonces of signed links already used (single use).
* ``secrets``: keys watcher made itself (the link key when none is configured), shared by
  every replica of one database.
* ``ingest_keys``: retry windows of ingest (``Idempotency-Key`` and bodies without
  ``starts_at``): a retry inside the window is the same occurrence.
* ``seen_signatures``: HMAC signatures already accepted, refused again until they expire.
* ``notifiers``: heartbeats of the processes that deliver notices, so that the claims of
  one that died are taken again at once instead of after a lease.
* ``reports``: each monthly client report made, with its PDF; (client, month) is unique, so
  a report goes out at most once whatever restarts or replicas do.
* ``engine_status``: the figures the engine's leader publishes (cursor, open tickets, who
  leads, a heartbeat), so that every worker and replica reports the same ones.
* ``op_results``: what the engine answered to an agent's operation, so that the replica
  that took the request can answer it whichever replica runs the engine.
* ``quarantine``: inbox rows (and timers) whose handling failed, with the reason: the engine
  sets them aside and goes on with the rest (``seq`` is the inbox row, or for a timer the
  cursor when it failed).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

inbox = Table(
    "inbox", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("source", String(64), nullable=False),
    Column("occ_key", String(255), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("payload", Text, nullable=False),
    UniqueConstraint("occ_key", name="uq_inbox_occ_key"),
)

engine_state = Table(
    "engine_state", metadata,
    Column("name", String(32), primary_key=True),
    Column("cursor", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("epoch", BigInteger, nullable=False, server_default="0"),
)

engine_status = Table(
    "engine_status", metadata,
    Column("name", String(32), primary_key=True),
    Column("leader", String(255), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("cursor", BigInteger, nullable=False),
    Column("open_tickets", BigInteger, nullable=False),
    Column("groups", BigInteger, nullable=False),
    Column("alerts", BigInteger, nullable=False),
    Column("unbound", BigInteger, nullable=False),
    Column("unrouted", BigInteger, nullable=False),
    Column("silenced", BigInteger, nullable=False),
    Column("leader_since", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

engine_parts = Table(
    "engine_parts", metadata,
    Column("name", String(32), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("key", Text, primary_key=True),  # a group id holds label values: no length cap
    Column("data", Text, nullable=False),
)

op_results = Table(
    "op_results", metadata,
    Column("seq", BigInteger, primary_key=True),
    Column("result", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

tickets = Table(
    "tickets", metadata,
    Column("id", String(32), primary_key=True),
    Column("client", Text, nullable=False),  # Text since 0003: as long as any label ingest keeps
    Column("site", Text),
    Column("category", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("updated_at", Float, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_tickets_status", "status"),
    Index("ix_tickets_client_opened", "client", "opened_at"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("ticket_id", String(32), nullable=False),
    Column("recipient", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("state", String(16), nullable=False),
    Column("last_error", Text),
    Column("sent_at", Float),
    Column("channel", String(64)),
    Column("claimed_at", Float),
    Column("claimed_by", String(64)),
    UniqueConstraint("ticket_id", "recipient", "kind", name="uq_outbox_once"),
    Index("ix_outbox_state_due", "state", "due_at"),
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_quarantine_seq", "seq"),
)

link_uses = Table(
    "link_uses", metadata,
    Column("nonce", String(64), primary_key=True),
    Column("used_at", Float, nullable=False),
)

secrets = Table(
    "secrets", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

ingest_keys = Table(
    "ingest_keys", metadata,
    Column("key", String(128), primary_key=True),
    Column("first_seen", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_ingest_keys_expires", "expires_at"),
)

seen_signatures = Table(
    "seen_signatures", metadata,
    Column("signature", String(128), primary_key=True),
    Column("expires_at", Float, nullable=False),
    Index("ix_seen_signatures_expires", "expires_at"),
)

notifiers = Table(
    "notifiers", metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

reports = Table(
    "reports", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("client", String(128), nullable=False),
    Column("month", String(7), nullable=False),
    Column("language", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("pdf", LargeBinary, nullable=False),
    UniqueConstraint("client", "month", name="uq_reports_client_month"),
)
