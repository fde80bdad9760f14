"""The tables of the ticket sinks (created by migration 0005_sinks), on watcher's metadata.

* ``sink_jobs``: the calls owed to the helpdesk systems, a durable queue beside the
  notification outbox.  (ticket, sink, key) is unique, so a fact (the ticket opened, a new
  symptom, the ticket resolved) is pushed once however often the engine rewrites the ticket.
  Jobs of one ticket and system run in id order; a failed call is retried with backoff and
  ends ``dead`` (a dead letter the API lists) after too many attempts.
* ``ticket_links``: watcher's ticket and its ticket in each system (id, link, sync state).
* ``sink_cursors``: how far each system's changes have been read (polling).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text, UniqueConstraint

from watcher.store.schema import metadata

sink_jobs = Table(
    "sink_jobs", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("ticket_id", String(32), nullable=False),
    Column("sink", String(32), nullable=False),
    Column("key", String(160), nullable=False),
    Column("action", String(16), nullable=False),
    Column("payload", Text, nullable=False, server_default="{}"),
    Column("created_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("state", String(16), nullable=False),
    Column("last_error", Text),
    Column("claimed_at", Float),
    Column("done_at", Float),
    UniqueConstraint("ticket_id", "sink", "key", name="uq_sink_jobs_once"),
    Index("ix_sink_jobs_state_due", "state", "due_at"),
    Index("ix_sink_jobs_ticket", "ticket_id", "sink"),
)

ticket_links = Table(
    "ticket_links", metadata,
    Column("ticket_id", String(32), primary_key=True),
    Column("sink", String(32), primary_key=True),
    Column("external_id", String(128), nullable=False),
    Column("url", Text, nullable=False),
    Column("baseline", Text, nullable=False, server_default="[]"),
    Column("external_status", String(64)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_ticket_links_external", "sink", "external_id"),
)

sink_cursors = Table(
    "sink_cursors", metadata,
    Column("sink", String(32), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)
