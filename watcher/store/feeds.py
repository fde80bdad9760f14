"""The ``feeds`` table: when each expected source last spoke, and which silence is announced.

Every replica records what its own ingest saw (``record_seen`` keeps the latest time, so
replicas writing in any order agree); the replica that runs the engine reads them all and
records the silences it announced, so that a restart neither forgets an open "blind"
incident nor announces it twice.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, MetaData, String, Table, case, select, update

from watcher.store import Store

metadata = MetaData()

feeds = Table(
    "feeds", metadata,
    Column("name", String(128), primary_key=True),
    Column("last_seen", Float),
    Column("silent_since", Float),
    Column("updated_at", Float, nullable=False),
)


def record_seen(store: Store, seen: dict[str, float], now: float) -> None:
    """Raise each feed's ``last_seen`` to the given time (never lower it)."""
    if not seen:
        return
    ins = store._insert(feeds)
    stmt = ins.on_conflict_do_update(index_elements=["name"], set_={
        "last_seen": case((feeds.c.last_seen.is_(None), ins.excluded.last_seen),
                          (ins.excluded.last_seen > feeds.c.last_seen, ins.excluded.last_seen),
                          else_=feeds.c.last_seen),
        "updated_at": ins.excluded.updated_at})
    with store.write() as conn:
        conn.execute(stmt, [{"name": name, "last_seen": ts, "silent_since": None, "updated_at": now}
                            for name, ts in sorted(seen.items())])


def load(store: Store) -> dict[str, tuple[float | None, float | None]]:
    """name -> (last_seen, silent_since)."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(feeds.c.name, feeds.c.last_seen, feeds.c.silent_since)).all()
    return {str(r[0]): (r[1], r[2]) for r in rows}


def set_silent(store: Store, name: str, since: float | None, now: float) -> None:
    """Record (or clear, with None) the silence announced for a feed."""
    ins = store._insert(feeds)
    with store.write() as conn:
        conn.execute(ins.on_conflict_do_nothing(index_elements=["name"]),
                     [{"name": name, "last_seen": None, "silent_since": since, "updated_at": now}])
        conn.execute(update(feeds).where(feeds.c.name == name).values(silent_since=since, updated_at=now))
