"""The ingest routes: one POST route per path of every format of the formats table
(watcher.collectors.formats), answered 2xx only once the events are committed."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from watcher.api import retries
from watcher.api.common import authorized, error, json_response, parse_json, read_body
from watcher.collectors.formats import TABLE, Format
from watcher.ingest import submit_events
from watcher.model import EventError, utcnow
from watcher.runtime import RUNTIME

log = logging.getLogger(__name__)


async def _ingest(request: web.Request, fmt: Format) -> web.Response:
    """One ingest request in the format ``fmt``: a 2xx once its events are committed."""
    rt = request.app[RUNTIME]
    auth_path = fmt.auth_path
    started = time.perf_counter()
    try:
        body = await read_body(request, rt)
    except web.HTTPRequestEntityTooLarge:
        rt.metrics.ingest_rejected.labels(auth_path, "too_large").inc()
        return error(413, f"body larger than {rt.config.service.max_body_bytes} bytes")
    denied = await authorized(request, rt, auth_path, body)
    if denied is not None:
        return denied
    try:
        payload = parse_json(body)
    except ValueError as exc:
        rt.metrics.ingest_rejected.labels(auth_path, "json").inc()
        return error(400, f"body is not valid JSON: {exc}")
    now = utcnow()
    try:
        events = fmt.parse(payload, now)
    except EventError as exc:
        rt.metrics.ingest_rejected.labels(auth_path, "invalid").inc()
        return error(400, str(exc))
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        rt.metrics.ingest_rejected.labels(auth_path, "invalid").inc()
        return error(400, f"invalid payload: {exc}")
    truncated = max((_count(ev.annotations.get("truncated_alerts")) for ev in events), default=0)
    if truncated and fmt.counts_truncated:
        rt.metrics.truncated_alerts.labels(auth_path).inc(truncated)
    try:
        windows = retries.retry_windows(request.headers, auth_path, events, rt.config.service.ingest_retry_window)
    except ValueError as exc:
        rt.metrics.ingest_rejected.labels(auth_path, "invalid").inc()
        return error(400, str(exc))
    try:
        done = await submit_events(rt.ingestor, events, metrics=rt.metrics, observe=rt.observe, windows=windows)
    except Exception as exc:
        log.error("ingest could not store %d events: %s", len(events), exc)
        return error(503, "the store is unavailable; nothing was stored, retry later")
    rt.metrics.ingest_seconds.labels(auth_path).observe(time.perf_counter() - started)
    return json_response({"status": "success", "accepted": done.accepted, "duplicates": done.duplicates})


def _count(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def _ingest_handler(fmt: Format) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await _ingest(request, fmt)

    handler.__name__ = f"post_{fmt.name}"
    return handler


async def post_unknown_webhook(request: web.Request) -> web.Response:
    """``/webhooks/<name>`` for a name the formats table lacks."""
    names = ", ".join(f.name for f in TABLE if any(p.startswith("/webhooks/") for p in f.paths))
    return error(404, f"no webhook named {request.match_info['name']!r} ({names})")


def ingest_routes() -> list[web.RouteDef]:
    """A POST route for every path of every format of the table."""
    out = [web.post(path, _ingest_handler(fmt)) for fmt in TABLE for path in fmt.paths]
    return [*out, web.post("/webhooks/{name}", post_unknown_webhook)]


ROUTES = ingest_routes()
