"""The operator's routes: metrics, stats, the outbox, the monthly report as JSON/text/HTML/PDF,
reload, Alertmanager's status and health answers, and the OpenAPI description."""

from __future__ import annotations

import asyncio
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from watcher.api.common import api_guard, error, json_response
from watcher.metrics import exposition
from watcher.model import format_time, utcnow
from watcher.runtime import RUNTIME
from watcher.status import FiguresCollector, engine_stats
from watcher.store.status import read_figures


async def get_outbox(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    rows = await asyncio.to_thread(rt.store.outbox_rows, request.query.get("state"))
    for r in rows:
        for k in ("created_at", "due_at", "sent_at", "claimed_at"):
            if r.get(k):
                r[k] = format_time(datetime.fromtimestamp(r[k], UTC))
    from watcher.sinks import api as sinks_api

    return json_response({"outbox": rows, "counts": await asyncio.to_thread(rt.store.outbox_counts),
                  **await asyncio.to_thread(sinks_api.dead_letters, rt.store, request.query.get("state"))})


async def get_metrics(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    figures = await asyncio.to_thread(read_figures, rt.store)
    rt.metrics.engine_leader.set(1 if rt.worker.leader else 0)
    traps = rt.collectors.trap_stats() if rt.collectors is not None else None
    if traps is not None:
        for outcome in ("received", "rejected_community", "rejected_v3", "sink_errors", "dropped", "garbage"):
            rt.metrics.snmp_traps.labels(outcome).set(traps.get(outcome, 0))
    if rt.collectors is not None:
        for name, h in rt.collectors.health().items():
            rt.metrics.collector_up.labels(name).set(1 if h.up else 0)
            rt.metrics.collector_runs.labels(name).set(h.runs)
            rt.metrics.collector_errors.labels(name).set(h.errors)
            if h.last_duration is not None:
                rt.metrics.collector_duration.labels(name).set(h.last_duration)
    from watcher.api import health
    from watcher.sinks import api as sinks_api

    await asyncio.to_thread(sinks_api.set_gauges, rt.store, rt.metrics)
    body = exposition(rt.metrics.registry, await health.figures(rt, FiguresCollector(figures)))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def get_report(request: web.Request) -> web.Response:
    """The monthly report of one client (``?month=YYYY-MM&format=json|text|html|pdf``)."""
    from watcher.report import render
    from watcher.report.send import make

    rt = request.app[RUNTIME]
    client = rt.config.inventory.clients.get(request.match_info["client"])
    if client is None:
        return error(404, f"no client {request.match_info['client']!r}")
    month = request.query.get("month", "")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        return error(400, "month: expected YYYY-MM")
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "text", "html", "pdf"):
        return error(400, "format: expected json, text, html or pdf")
    if not 1970 <= int(month[:4]) <= 9998:
        return error(400, "month: out of range")
    made = await asyncio.to_thread(make, rt.store, rt.config, client, month, utcnow(), fmt == "pdf",
                                   fmt in ("html", "pdf"))
    if fmt == "text":
        return web.Response(text=render.render_text(made.report, client))
    if fmt == "html":
        return web.Response(text=made.html, content_type="text/html")
    if fmt == "pdf":
        return web.Response(body=made.pdf, content_type="application/pdf")
    return json_response(render.to_json(made.report))


async def get_stats(request: web.Request) -> web.Response:
    """What the engine and the collectors are doing: counts an operator watches."""
    rt = request.app[RUNTIME]
    figures = await asyncio.to_thread(read_figures, rt.store)
    out: dict[str, Any] = {
        "engine": engine_stats(figures, rt.worker.leader, time.time()),
        "outbox": figures.outbox,
        "process": {"pid": os.getpid(), "leader": rt.worker.leader},
        "collectors": {name: h.to_dict() for name, h in rt.collectors.health().items()} if rt.collectors else {},
    }
    traps = rt.collectors.trap_stats() if rt.collectors is not None else None
    if traps is not None:
        out["snmp_traps"] = traps
    return json_response(out)


async def get_health(request: web.Request) -> web.Response:
    from watcher.api import health

    return await health.get_healthz(request)


async def get_am_status(request: web.Request) -> web.Response:
    """Enough of Alertmanager's ``/api/v2/status`` for Prometheus and tools that probe it."""
    rt = request.app[RUNTIME]
    return json_response({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {"version": "watcher-0.1.0", "branch": "", "buildDate": "", "buildUser": "",
                        "goVersion": "", "revision": ""},
        "config": {"original": ""},
        "uptime": format_time(datetime.fromtimestamp(rt.started_at, UTC)),
    })


async def get_ok(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def post_reload(request: web.Request) -> web.Response:
    rt, _data, err = await api_guard(request)
    if err is not None:
        return err
    try:
        await rt.reload()
    except Exception as exc:
        return error(400, f"configuration rejected, the old one stays in force: {exc}")
    return json_response({"status": "success"})


OPENAPI = Path(__file__).with_name("openapi.yaml")


async def get_openapi(request: web.Request) -> web.Response:
    """The OpenAPI description of this API (the tests check the API against it)."""
    return web.Response(text=OPENAPI.read_text(encoding="utf-8"), content_type="application/yaml")


ROUTES = [
    web.get("/api/openapi.yaml", get_openapi),
    web.get("/api/v2/status", get_am_status),
    web.get("/-/healthy", get_ok),
    web.get("/-/ready", get_ok),
    web.get("/api/v1/outbox", get_outbox),
    web.post("/api/v1/reload", post_reload),
    web.get("/metrics", get_metrics),
    web.get("/healthz", get_health),
    web.get("/api/v1/stats", get_stats),
    web.get("/api/v1/reports/{client}", get_report),
]
