"""Retry windows of ingest: a request retried within a window is the same occurrence.

An event without ``starts_at`` is keyed by the time watcher first saw it, so without this
every retry of the same body would be a new occurrence (a threshold rule would count one
failed login three times).  The HTTP edge gives such rows a ``window_key`` (a digest of the
body's event, or of the request's ``Idempotency-Key``) and a window; here, inside the
inbox's own write transaction, the key's first sighting is inserted if absent (or replaced
once it has expired) and read back, and the row's ``occ_key`` becomes the key plus that
first sighting.  A retry within the window therefore has the same ``occ_key`` and is
stored once; after the window the same body is a new occurrence.  Being in the store and
in the same transaction, this holds across replicas and concurrent retries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from watcher.store.schema import ingest_keys

if TYPE_CHECKING:
    from watcher.store import InboxRow


def windowed(conn: Connection, insert: Callable[[Table], postgresql.Insert | sqlite.Insert], rows: Sequence[InboxRow],
             keys: list[str]) -> None:
    """Rewrite ``keys[i]`` (the occ_key row ``i`` is stored under) of each windowed row to its
    window key + first sighting."""
    now = max(r.received_at for r in rows)
    wanted: dict[str, float] = {}
    for r in rows:
        if r.window_key:
            wanted[r.window_key] = max(wanted.get(r.window_key, 0.0), r.window)
    conn.execute(delete(ingest_keys).where(ingest_keys.c.expires_at < now - 60))
    ins = insert(ingest_keys)
    conn.execute(ins.on_conflict_do_update(
        index_elements=["key"],
        set_={"first_seen": ins.excluded.first_seen, "expires_at": ins.excluded.expires_at},
        where=ingest_keys.c.expires_at < ins.excluded.first_seen),
        [{"key": k, "first_seen": now, "expires_at": now + w} for k, w in wanted.items()])
    seen = dict(conn.execute(select(ingest_keys.c.key, ingest_keys.c.first_seen)
                             .where(ingest_keys.c.key.in_(list(wanted)))).all())
    for i, r in enumerate(rows):
        if r.window_key:
            keys[i] = f"w|{r.window_key}|{float(seen[r.window_key])!r}"
