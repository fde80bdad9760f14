"""What the HTTP API shows of the ticket sinks (kept here so the handlers stay a line each)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from watcher.metrics import Metrics
from watcher.model import format_time
from watcher.sinks import queue
from watcher.store import Store

STATES = ("pending", "sending", "done", "dead")


def sync_state(store: Store, ticket_id: str) -> list[dict[str, Any]]:
    """``external`` of a ticket document: per system its ticket id, link and sync state."""
    return queue.sync_state(store, ticket_id)


def attach(store: Store, docs: list[dict[str, Any]]) -> None:
    """Put ``external`` on each document (the console's list)."""
    for doc in docs:
        doc["external"] = queue.sync_state(store, doc["id"])


def dead_letters(store: Store, state: str | None) -> dict[str, Any]:
    """``sink_jobs`` beside the outbox's rows: the calls to ticket systems (``?state=dead``
    lists the dead letters of both)."""
    out = queue.rows(store, state)
    for r in out:
        r.pop("payload", None)
        for k in ("created_at", "due_at", "claimed_at", "done_at"):
            if r.get(k):
                r[k] = format_time(datetime.fromtimestamp(r[k], UTC))
    return {"sink_jobs": out}


def set_gauges(store: Store, metrics: Metrics) -> None:
    counts = queue.counts(store)
    for sink in {s for s, _ in counts}:
        for state in STATES:
            metrics.sink_jobs.labels(sink, state).set(counts.get((sink, state), 0))
