"""The engine's published figures in the ``engine_status`` row: written by the leader only,
read by every worker and replica, so that they all report the same cursor and counts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from watcher.store.schema import engine_status, inbox, outbox

if TYPE_CHECKING:
    from watcher.store import Store


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What the leader knew at ``heartbeat_at``; ``epoch`` is that of its engine state, which
    keeps a deposed leader from writing over its successor's figures."""

    leader: str
    epoch: int
    cursor: int
    open_tickets: int
    groups: int
    alerts: int
    unbound: int
    unrouted: int
    silenced: int
    leader_since: float
    heartbeat_at: float


FIELDS = tuple(f.name for f in dataclasses.fields(EngineStatus))


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """One reading of the database: the leader's last published status (None before the
    first), inbox rows the engine has not handled yet, and the outbox by state."""

    status: EngineStatus | None
    inbox_head: int
    inbox_lag: int
    outbox: dict[str, int]


def put_status(store: Store, conn: Connection, status: EngineStatus, name: str = "main") -> None:
    """Write ``status`` in the caller's transaction, unless a later epoch's is already there."""
    ins: Any = store._insert(engine_status).values(name=name, **dataclasses.asdict(status))
    conn.execute(ins.on_conflict_do_update(index_elements=["name"],
                                           set_={f: getattr(ins.excluded, f) for f in FIELDS},
                                           where=engine_status.c.epoch <= ins.excluded.epoch))


def publish_status(store: Store, status: EngineStatus, name: str = "main") -> None:
    """``put_status`` in a transaction of its own (a heartbeat between engine commits)."""
    with store.write() as conn:
        put_status(store, conn, status, name)


def read_figures(store: Store, name: str = "main") -> StoreFigures:
    """The figures every process reports, read in this order so that the head is never older
    than the cursor it is compared with; the lag counts the rows between the two (a sequence
    may have gaps)."""
    with store.engine.connect() as conn:
        row = conn.execute(select(*(engine_status.c[f] for f in FIELDS))
                           .where(engine_status.c.name == name)).first()
        status = EngineStatus(*row) if row is not None else None
        cursor = status.cursor if status is not None else 0
        head = int(conn.execute(select(func.coalesce(func.max(inbox.c.seq), 0))).scalar_one())
        lag = int(conn.execute(select(func.count()).where((inbox.c.seq > cursor) & (inbox.c.seq <= head))
                               ).scalar_one())
        counts = conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all()
    return StoreFigures(status, head, lag, {str(r[0]): int(r[1]) for r in counts})
