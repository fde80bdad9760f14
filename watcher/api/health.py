"""Health, readiness, the quarantine and the unbound list over HTTP.

* ``GET /healthz``: the process is alive and its store answers; says whether the engine is
  stalled (503 then, so a supervisor can restart a stuck process).
* ``GET /ready``: ready for work: the engine is not stalled and the inbox is handled within
  ``max_ready_lag`` seconds and ``max_ready_lag_rows`` rows, whichever replica leads (a
  replica that does not lead is ready when the leader keeps up; if nobody keeps up, no
  replica is ready).
* ``GET /api/v1/quarantine``: items the engine set aside, newest first, with the reason.
* ``GET /api/v1/unbound``: events that name what the inventory lacks, grouped by name.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watcher.model import format_time
from watcher.runtime import RUNTIME, Runtime
from watcher.store import progress
from watcher.store import quarantine as qstore
from watcher.store.status import read_figures

STALL_AFTER = 5.0  # seconds of failing batches before the engine counts as stalled


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _when(ts: float | None) -> str | None:
    return format_time(datetime.fromtimestamp(ts, UTC)) if ts is not None else None


def stalled(rt: Runtime, now: float) -> str | None:
    """Why the engine of this replica is stalled, or None."""
    worker = rt.worker
    if not worker.leader:
        return None
    failing = worker.guard.failing_since
    if failing is not None and now - failing >= STALL_AFTER:
        return f"engine batches failing for {now - failing:.0f} s"
    last = worker.guard.last_ok
    quiet = max(30.0, 10 * worker.tick)
    if last is not None and now - last > quiet:
        return f"no engine batch finished for {now - last:.0f} s"
    return None


def _readiness(rt: Runtime) -> dict[str, Any]:
    now = time.time()
    worker = rt.worker
    svc = rt.config.service
    reasons = []
    if worker.leader:
        cursor = worker.cursor
    else:  # the leader's published cursor; its heartbeat says whether it is still there
        st = read_figures(rt.store).status
        cursor = st.cursor if st is not None else progress.stored_cursor(rt.store)
        if st is not None and now - st.heartbeat_at > svc.max_ready_lag:
            reasons.append(f"the engine's leader ({st.leader}) last published {now - st.heartbeat_at:.0f} s ago")
    rows, seconds = progress.lag(rt.store, cursor, now)
    why = stalled(rt, now)
    if why:
        reasons.append(why)
    if seconds > svc.max_ready_lag:
        reasons.append(f"the oldest unhandled event waits {seconds:.0f} s (max_ready_lag {svc.max_ready_lag:g} s)"
                       + ("" if worker.leader else "; no replica keeps up"))
    if rows > svc.max_ready_lag_rows:
        reasons.append(f"{rows} events wait (max_ready_lag_rows {svc.max_ready_lag_rows})")
    return {"ready": not reasons, "reasons": reasons, "leader": worker.leader, "cursor": cursor,
            "lag_rows": rows, "lag_seconds": round(seconds, 3)}


async def get_ready(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        doc = await asyncio.to_thread(_readiness, rt)
    except Exception as exc:
        return _json({"status": "not ready", "reasons": [f"store: {exc.__class__.__name__}"]}, 503)
    rt.metrics.engine_ready.set(1 if doc["ready"] else 0)
    return _json({"status": "ready" if doc["ready"] else "not ready", **doc}, 200 if doc["ready"] else 503)


async def get_healthz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        st = (await asyncio.to_thread(read_figures, rt.store)).status
    except Exception as exc:
        return _json({"status": "unhealthy", "store": str(exc.__class__.__name__)}, 503)
    why = stalled(rt, time.time())
    doc = {"status": "stalled" if why else "ok", "leader": rt.worker.leader,
           "engine_cursor": st.cursor if st else 0, "open_tickets": st.open_tickets if st else 0}
    if why:
        doc["reason"] = why
    return _json(doc, 503 if why else 200)


async def get_quarantine(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        limit = min(max(int(request.query.get("limit", "200")), 0), 5000)
        offset = min(max(int(request.query.get("offset", "0")), 0), 2**62)
    except ValueError:
        return _json({"status": "error", "error": "limit and offset must be whole numbers"}, 400)
    items = await asyncio.to_thread(qstore.rows, rt.store, limit, offset)
    total = await asyncio.to_thread(qstore.count, rt.store)
    return _json({"quarantine": items, "total": total})


def unbound_rows(rt: Runtime) -> list[list[Any]]:
    """The leader's list from memory; another replica reads the state the leader stored."""
    if rt.worker.leader:
        return list(rt.worker.guard.unbound)
    _, state = rt.store.load_engine()
    return list((state or {}).get("unbound", []))


async def get_unbound(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    rows = await asyncio.to_thread(unbound_rows, rt)
    rows.sort(key=lambda r: (-float(r[5]), r[0], r[1], r[2]))
    return _json({"unbound": [{"source": r[0], "label": r[1], "value": r[2], "count": r[3],
                               "first_seen": _when(r[4]), "last_seen": _when(r[5])} for r in rows],
                  "events": sum(int(r[3]) for r in rows)})


class _Figures:
    """The store's figures plus the quarantine's size and how long the oldest unhandled event
    waits: read from the database at scrape time, the same from every process."""

    def __init__(self, base: Collector, quarantine: int, lag_seconds: float) -> None:
        self.base, self.quarantine, self.lag_seconds = base, quarantine, lag_seconds

    def collect(self) -> Iterator[Metric]:
        yield from self.base.collect()
        yield GaugeMetricFamily("watcher_quarantine_size", "Items the engine set aside (GET /api/v1/quarantine)",
                                value=self.quarantine)
        yield GaugeMetricFamily("watcher_inbox_lag_seconds", "How long the oldest stored event the engine has "
                                "not handled yet has waited", value=self.lag_seconds)


async def figures(rt: Runtime, base: Collector) -> Collector:
    def read() -> tuple[int, float]:
        st = read_figures(rt.store).status
        cursor = rt.worker.cursor if rt.worker.leader else (st.cursor if st else 0)
        return qstore.count(rt.store), progress.lag(rt.store, cursor, time.time())[1]

    size, seconds = await asyncio.to_thread(read)
    return _Figures(base, size, seconds)


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/ready", get_ready)
    r.add_get("/api/v1/quarantine", get_quarantine)
    r.add_get("/api/v1/unbound", get_unbound)


__all__ = ["figures", "get_healthz", "routes", "stalled"]
