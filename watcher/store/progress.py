"""How far the engine is behind the inbox, read cheaply (for /ready and /metrics).

Any replica can ask: the leader knows its own cursor; another replica reads the stored
one.  The lag in rows is counted by sequence numbers (PostgreSQL may skip some after a
rejected duplicate, so it can overstate a little); the lag in time is how long the oldest
unhandled row has waited.
"""

from __future__ import annotations

from sqlalchemy import func, select

from watcher.store import Store
from watcher.store.schema import engine_state, inbox


def stored_cursor(store: Store, name: str = "main") -> int:
    with store.engine.connect() as conn:
        value = conn.execute(select(engine_state.c.cursor).where(engine_state.c.name == name)).scalar()
    return int(value) if value is not None else 0


def lag(store: Store, cursor: int, now: float) -> tuple[int, float]:
    """(rows, seconds) the engine at ``cursor`` is behind the inbox."""
    with store.engine.connect() as conn:
        top = int(conn.execute(select(func.coalesce(func.max(inbox.c.seq), 0))).scalar_one())
        oldest = conn.execute(select(inbox.c.received_at).where(inbox.c.seq > cursor)
                              .order_by(inbox.c.seq).limit(1)).scalar()
    return max(0, top - cursor), (max(0.0, now - float(oldest)) if oldest is not None else 0.0)


__all__ = ["lag", "stored_cursor"]
