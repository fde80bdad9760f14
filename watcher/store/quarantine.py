"""The quarantine: what the engine set aside because handling it failed.

One failing event, operation or timer must never stop the others: the engine worker
records it here (in a transaction of its own, before it goes on), skips it from then on,
and an operator reads the list through ``GET /api/v1/quarantine``.  The payload is kept as
an excerpt: the whole row stays in the inbox under its ``seq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from watcher.model import format_time
from watcher.store import Store
from watcher.store.schema import quarantine

EXCERPT = 500
REASON = 2000


@dataclass(frozen=True, slots=True)
class Quarantined:
    seq: int  # the inbox row; for a timer, the engine's cursor when it failed
    kind: str  # event | op | timer | commit
    reason: str
    payload: str

    def to_dict(self, at: float) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "reason": self.reason, "payload": self.payload,
                "at": format_time(datetime.fromtimestamp(at, UTC))}


def excerpt(payload: str) -> str:
    """The start of a payload, for the operator to recognise it (the inbox has the rest)."""
    text = payload.replace("\x00", "\ufffd")
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


def add(store: Store, item: Quarantined, now: float) -> None:
    with store.write() as conn:
        conn.execute(quarantine.insert().values(seq=item.seq, kind=item.kind[:16],
                                                reason=item.reason.replace("\x00", "\ufffd")[:REASON],
                                                payload=excerpt(item.payload), created_at=now))


def rows(store: Store, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    """The newest first."""
    q = select(quarantine.c.seq, quarantine.c.kind, quarantine.c.reason, quarantine.c.payload,
               quarantine.c.created_at).order_by(quarantine.c.id.desc()).limit(limit).offset(offset)
    with store.engine.connect() as conn:
        return [Quarantined(int(r[0]), str(r[1]), str(r[2]), str(r[3])).to_dict(float(r[4]))
                for r in conn.execute(q).all()]


def count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(quarantine)).scalar_one())


def skipped_after(store: Store, cursor: int) -> tuple[set[int], set[str]]:
    """Inbox rows past ``cursor`` set aside already (a restart must not fail on them again), and
    the timers set aside lately (their identity is the payload of a ``timer`` row)."""
    with store.engine.connect() as conn:
        seqs = {int(r[0]) for r in conn.execute(
            select(quarantine.c.seq).where((quarantine.c.seq > cursor) & (quarantine.c.kind != "timer"))).all()}
        timers = {str(r[0]) for r in conn.execute(
            select(quarantine.c.payload).where(quarantine.c.kind == "timer")
            .order_by(quarantine.c.id.desc()).limit(1000)).all()}
    return seqs, timers


__all__ = ["Quarantined", "add", "count", "excerpt", "rows", "skipped_after"]
