"""Reads and writes of the sink tables, on watcher's Store (its engine and its write lock).

Every method is one transaction.  ``enqueue`` runs inside the engine's own commit (see
``Store.commit_batch``'s ``also``), so a ticket change and the calls it owes are stored
together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Connection

from watcher.sinks.tables import sink_cursors, sink_jobs, ticket_links
from watcher.store import Store

ACTIVE = ("pending", "sending")


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    ticket_id: str
    sink: str
    key: str
    action: str  # open | comment | resolve
    payload: dict[str, Any]
    attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class Link:
    ticket_id: str
    sink: str
    external_id: str
    url: str
    baseline: frozenset[str]
    external_status: str | None


def enqueue(store: Store, conn: Connection, jobs: Sequence[dict[str, Any]], now: float) -> None:
    """Insert the jobs not already there (by ticket, sink and key); in the caller's transaction."""
    if not jobs:
        return
    rows = [{"ticket_id": j["ticket_id"], "sink": j["sink"], "key": j["key"], "action": j["action"],
             "payload": orjson.dumps(j.get("payload") or {}).decode(), "created_at": now, "due_at": now,
             "attempts": 0, "state": "pending"} for j in jobs]
    stmt = store._insert(sink_jobs).on_conflict_do_nothing(index_elements=["ticket_id", "sink", "key"])
    for chunk in range(0, len(rows), 500):
        conn.execute(stmt, rows[chunk:chunk + 500])


def claim(store: Store, now: float, limit: int, lease: float) -> list[Job]:
    """Due jobs, at most the first unfinished one of each (ticket, sink): calls of one ticket
    reach its system in order (created before commented before resolved).  A claim older
    than ``lease`` (its process died mid-call) is taken again."""
    earlier = sink_jobs.alias("earlier")
    blocked = select(earlier.c.id).where(and_(
        earlier.c.ticket_id == sink_jobs.c.ticket_id, earlier.c.sink == sink_jobs.c.sink,
        earlier.c.id < sink_jobs.c.id, earlier.c.state.in_(ACTIVE))).exists()
    due = ((sink_jobs.c.state == "pending") & (sink_jobs.c.due_at <= now)) | \
          ((sink_jobs.c.state == "sending") & (sink_jobs.c.claimed_at < now - lease))
    q = (select(sink_jobs.c.id, sink_jobs.c.ticket_id, sink_jobs.c.sink, sink_jobs.c.key, sink_jobs.c.action,
                sink_jobs.c.payload, sink_jobs.c.attempts, sink_jobs.c.created_at)
         .where(due & ~blocked).order_by(sink_jobs.c.id).limit(limit))
    with store.write() as conn:
        if not store.is_sqlite:
            q = q.with_for_update(skip_locked=True, of=sink_jobs)
        rows = conn.execute(q).all()
        if rows:
            conn.execute(update(sink_jobs).where(sink_jobs.c.id.in_([r[0] for r in rows]))
                         .values(state="sending", claimed_at=now))
    return [Job(int(r[0]), r[1], r[2], r[3], r[4], orjson.loads(r[5] or "{}"), int(r[6]), float(r[7]))
            for r in rows]


def next_due(store: Store) -> float | None:
    with store.engine.connect() as conn:
        value = conn.execute(select(func.min(sink_jobs.c.due_at)).where(sink_jobs.c.state == "pending")).scalar()
    return float(value) if value is not None else None


def finish(store: Store, job_id: int, now: float, note: str | None = None) -> None:
    with store.write() as conn:
        conn.execute(update(sink_jobs).where(sink_jobs.c.id == job_id).values(
            state="done", done_at=now, last_error=note))


def fail(store: Store, job_id: int, error: str, next_due: float | None) -> None:
    """Retry at ``next_due``, or give up (``dead``, a dead letter) when it is None."""
    with store.write() as conn:
        conn.execute(update(sink_jobs).where(sink_jobs.c.id == job_id).values(
            state="pending" if next_due is not None else "dead", attempts=sink_jobs.c.attempts + 1,
            last_error=error[:2000], due_at=next_due if next_due is not None else sink_jobs.c.due_at))


def link_and_finish(store: Store, job_id: int, ticket_id: str, sink: str, external_id: str, url: str,
                    baseline: Sequence[str], now: float) -> None:
    """Record the external ticket and close the job that created it, together."""
    with store.write() as conn:
        ins = store._insert(ticket_links)
        conn.execute(ins.on_conflict_do_update(index_elements=["ticket_id", "sink"], set_={
            "external_id": ins.excluded.external_id, "url": ins.excluded.url, "updated_at": ins.excluded.updated_at}),
            [{"ticket_id": ticket_id, "sink": sink, "external_id": external_id, "url": url,
              "baseline": orjson.dumps(sorted(baseline)).decode(), "external_status": None,
              "created_at": now, "updated_at": now}])
        conn.execute(update(sink_jobs).where(sink_jobs.c.id == job_id).values(state="done", done_at=now,
                                                                                last_error=None))


def _link(r: Any) -> Link:
    return Link(r.ticket_id, r.sink, r.external_id, r.url, frozenset(orjson.loads(r.baseline or "[]")),
                r.external_status)


def get_link(store: Store, ticket_id: str, sink: str) -> Link | None:
    with store.engine.connect() as conn:
        r = conn.execute(select(ticket_links).where((ticket_links.c.ticket_id == ticket_id)
                                                    & (ticket_links.c.sink == sink))).first()
    return _link(r) if r is not None else None


def links_of_sink(store: Store, sink: str, external_ids: Sequence[str]) -> dict[str, Link]:
    """external id -> link, for the ids a poll returned."""
    if not external_ids:
        return {}
    with store.engine.connect() as conn:
        rows = conn.execute(select(ticket_links).where((ticket_links.c.sink == sink)
                                                       & ticket_links.c.external_id.in_(list(external_ids)))).all()
    return {r.external_id: _link(r) for r in rows}


def set_external_status(store: Store, ticket_id: str, sink: str, status: str, now: float) -> None:
    with store.write() as conn:
        conn.execute(update(ticket_links).where((ticket_links.c.ticket_id == ticket_id)
                                                & (ticket_links.c.sink == sink))
                     .values(external_status=status[:64], updated_at=now))


def sync_state(store: Store, ticket_id: str) -> list[dict[str, Any]]:
    """Per system: the external ticket (id, link) and how far its sync got, for the API."""
    with store.engine.connect() as conn:
        links = {r.sink: r for r in conn.execute(select(ticket_links).where(
            ticket_links.c.ticket_id == ticket_id)).all()}
        jobs = conn.execute(select(sink_jobs.c.sink, sink_jobs.c.key, sink_jobs.c.state, sink_jobs.c.attempts,
                                   sink_jobs.c.last_error).where(sink_jobs.c.ticket_id == ticket_id)
                            .order_by(sink_jobs.c.id)).all()
    out: dict[str, dict[str, Any]] = {}
    for j in jobs:
        entry = out.setdefault(j.sink, {"sink": j.sink, "external_id": None, "url": None, "external_status": None,
                                        "state": "synced", "pending": 0, "dead": 0, "last_error": None})
        if j.state in ACTIVE:
            entry["pending"] += 1
        elif j.state == "dead":
            entry["dead"] += 1
        if j.state in ("dead", "pending") and j.last_error:
            entry["last_error"] = j.last_error
    for sink, link in links.items():
        entry = out.setdefault(sink, {"sink": sink, "state": "synced", "pending": 0, "dead": 0, "last_error": None})
        entry.update(external_id=link.external_id, url=link.url, external_status=link.external_status)
    for entry in out.values():
        entry["state"] = "failed" if entry["dead"] else "pending" if entry["pending"] else "synced"
    return list(out.values())


def counts(store: Store) -> dict[tuple[str, str], int]:
    """(sink, state) -> jobs, for /metrics."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(sink_jobs.c.sink, sink_jobs.c.state, func.count())
                            .group_by(sink_jobs.c.sink, sink_jobs.c.state)).all()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def rows(store: Store, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    q = select(sink_jobs).order_by(sink_jobs.c.id.desc()).limit(limit)
    if state:
        q = q.where(sink_jobs.c.state == state)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q).all()]


def get_cursor(store: Store, sink: str) -> str | None:
    with store.engine.connect() as conn:
        value = conn.execute(select(sink_cursors.c.cursor).where(sink_cursors.c.sink == sink)).scalar()
    return str(value) if value is not None else None


def set_cursor(store: Store, sink: str, cursor: str, now: float) -> None:
    with store.write() as conn:
        ins = store._insert(sink_cursors)
        conn.execute(ins.on_conflict_do_update(index_elements=["sink"], set_={
            "cursor": ins.excluded.cursor, "updated_at": ins.excluded.updated_at}),
            [{"sink": sink, "cursor": cursor, "updated_at": now}])
