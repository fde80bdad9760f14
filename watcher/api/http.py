"""The HTTP API (docs/events.md, docs/tickets.md) on aiohttp.

Handlers are thin: parse and check at the edge, hand rows to the ingestor or ops to the
engine worker through the inbox, and answer.  A 2xx on an ingest path means the rows are
committed; bad input is a 4xx with a message and stores nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from watcher.api import console, guard, reports, retries, silences
from watcher.api.auth import IngestAuth, check
from watcher.collectors.formats import FORMATS
from watcher.config.regex import RegexError
from watcher.config.rules import parse_matcher
from watcher.metrics import exposition
from watcher.model import EventError, format_time, op_json, parse_time, utcnow
from watcher.notify import links
from watcher.runtime import RUNTIME, Runtime
from watcher.status import FiguresCollector, engine_stats
from watcher.store import InboxRow
from watcher.store.status import read_figures

log = logging.getLogger(__name__)




def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _error(status: int, message: str) -> web.Response:
    return _json({"status": "error", "error": message}, status)


KNOWN_SOURCES = frozenset({"api", "alertmanager", "prometheus", "grafana", "zabbix", "snmp", "snmp_poll", "probe",
                           "poller", "disk", "mail", "mailbox"})


def source_label(source: str) -> str:
    """A metric label for an event's source: senders choose ``source`` freely, so only the
    known ones get a series of their own (one per sender would be unbounded)."""
    return source if source in KNOWN_SOURCES else "other"


def parse_json(body: bytes) -> Any:
    """The request body as JSON, strictly: no NaN/Infinity, no unpaired surrogates, no nesting
    deep enough to exhaust the parser.  Raises ValueError with a message for the client."""
    try:
        return orjson.loads(body)  # strict by design: NaN, lone surrogates and depth > 1024 are errors
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None


def _auth_for(rt: Runtime, path: str) -> IngestAuth:
    return rt.auth.get(path) or rt.auth.get("default") or IngestAuth()


async def _authorized(request: web.Request, rt: Runtime, path: str, body: bytes) -> web.Response | None:
    auth = _auth_for(rt, path)
    now = utcnow()
    result = check(auth, request.headers, body, now)
    if result.ok:
        if auth.kind == "hmac" and not await retries.first_use(rt.store, auth, request.headers, now):
            rt.metrics.auth_failures.labels(path).inc()
            return _error(401, "this signature was used before; sign the request again (a replay)")
        return None
    rt.metrics.auth_failures.labels(path).inc()
    resp = _error(result.status, result.reason)
    if result.status == 401 and getattr(result, "challenge", None):
        resp.headers["WWW-Authenticate"] = str(result.challenge)
    return resp


async def _read_body(request: web.Request, rt: Runtime) -> bytes:
    limit = rt.config.service.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = await guard.read_within(request, rt.config.service.body_timeout)
    if len(body) > limit:  # a chunked body has no Content-Length to check up front
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


async def _ingest(request: web.Request, fmt: str, auth_path: str) -> web.Response:
    rt = request.app[RUNTIME]
    started = time.perf_counter()
    try:
        body = await _read_body(request, rt)
    except web.HTTPRequestEntityTooLarge:
        rt.metrics.ingest_rejected.labels(auth_path, "too_large").inc()
        return _error(413, f"body larger than {rt.config.service.max_body_bytes} bytes")
    denied = await _authorized(request, rt, auth_path, body)
    if denied is not None:
        return denied
    try:
        payload = parse_json(body)
    except ValueError as exc:
        rt.metrics.ingest_rejected.labels(auth_path, "json").inc()
        return _error(400, f"body is not valid JSON: {exc}")
    now = utcnow()
    try:
        events = FORMATS[fmt](payload, now)
    except EventError as exc:
        rt.metrics.ingest_rejected.labels(auth_path, "invalid").inc()
        return _error(400, str(exc))
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        rt.metrics.ingest_rejected.labels(auth_path, "invalid").inc()
        return _error(400, f"invalid payload: {exc}")
    truncated = max((_count(ev.annotations.get("truncated_alerts")) for ev in events), default=0)
    if truncated and fmt in ("alertmanager", "grafana"):
        rt.metrics.truncated_alerts.labels(auth_path).inc(truncated)
    received = time.time()
    try:
        windows = retries.retry_windows(request.headers, auth_path, events, rt.config.service.ingest_retry_window)
    except ValueError as exc:
        rt.metrics.ingest_rejected.labels(auth_path, "invalid").inc()
        return _error(400, str(exc))
    rows = []
    fresh = []
    known = rt.ingestor.committed
    duplicates: Counter[str] = Counter()
    for ev, (window_key, window) in zip(events, windows, strict=True):
        if ev.observed_at is None:
            ev.observed_at = now
        key = ev.occurrence_key
        if key in known and not window_key:  # a re-send of an occurrence already durable: nothing to store
            duplicates[ev.source] += 1
            continue
        rows.append(InboxRow("event", ev.source[:64], key, received, orjson.dumps(ev.to_dict()).decode(),
                             window_key, window))
        fresh.append(ev)
    if rt.observe is not None:  # a re-send still shows that its sender is alive
        rt.observe(events, received)
    received_by: Counter[str] = Counter()
    if rows:
        try:
            seqs = await rt.ingestor.submit(rows, lambda got: rt.worker.prime(got, fresh))
        except Exception as exc:
            log.error("ingest could not store %d events: %s", len(rows), exc)
            return _error(503, "the store is unavailable; nothing was stored, retry later")
        for ev, seq in zip(fresh, seqs, strict=True):
            (received_by if seq is not None else duplicates)[ev.source] += 1
    for counts, metric in ((received_by, rt.metrics.events_received), (duplicates, rt.metrics.events_duplicate)):
        for source, n in counts.items():
            metric.labels(source_label(source)).inc(n)
    rt.metrics.ingest_seconds.labels(auth_path).observe(time.perf_counter() - started)
    accepted = sum(received_by.values())
    return _json({"status": "success", "accepted": accepted, "duplicates": len(events) - accepted})


def _count(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


async def post_events(request: web.Request) -> web.Response:
    return await _ingest(request, "events", "events")


async def post_prometheus(request: web.Request) -> web.Response:
    return await _ingest(request, "prometheus", "prometheus")


async def post_webhook(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ("alertmanager", "grafana", "zabbix"):
        return _error(404, f"no webhook named {name!r} (alertmanager, grafana, zabbix)")
    return await _ingest(request, name, name)


# ---------------------------------------------------------------- ops through the inbox


async def _op(rt: Runtime, kind: str, args: dict[str, Any]) -> dict[str, Any]:
    row = InboxRow("op", "api", f"op|{uuid.uuid4().hex}", time.time(),
                   orjson.dumps(op_json(kind, utcnow(), args)).decode())
    seqs = await rt.ingestor.submit([row])
    seq = seqs[0]
    assert seq is not None
    return await rt.worker.wait_for(seq)


async def _api_guard(request: web.Request) -> tuple[Runtime, dict[str, Any] | None, web.Response | None]:
    rt = request.app[RUNTIME]
    try:
        body = await _read_body(request, rt)
    except web.HTTPRequestEntityTooLarge:
        return rt, None, _error(413, f"body larger than {rt.config.service.max_body_bytes} bytes")
    denied = None
    if "api" in rt.auth or "default" in rt.auth:
        denied = await _authorized(request, rt, "api", body)
    if denied is not None:
        return rt, None, denied
    form = await guard.form_fields(request)
    if form is not None:
        return rt, form, None
    if not body.strip():
        return rt, {}, None
    try:
        data = parse_json(body)
    except ValueError as exc:
        return rt, None, _error(400, f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return rt, None, _error(400, "body must be a JSON object")
    return rt, data, None


async def apply_ticket_op(rt: Runtime, tid: str, kind: str, extra: dict[str, Any]) -> web.Response | None:
    """An agent's operation on one open ticket, through the inbox like every op: None once
    it took effect, else the error to answer (no such ticket, resolved, no longer open).
    The API and the console's buttons both act through here."""
    doc = await asyncio.to_thread(rt.store.get_ticket, tid)
    if doc is None:
        return _error(404, f"no ticket {tid}")
    if doc["status"] == "resolved":
        return _error(409, f"ticket {tid} is resolved")
    result = await _op(rt, kind, {"ticket": tid, **extra})
    if not result.get("tickets"):
        return _error(409, f"ticket {tid} is no longer open")
    return None


async def _ticket_op(request: web.Request, kind: str, extra: dict[str, Any]) -> web.Response:
    rt = request.app[RUNTIME]
    tid = request.match_info["id"]
    failed = await apply_ticket_op(rt, tid, kind, extra)
    return failed or _json(await asyncio.to_thread(rt.store.get_ticket, tid))


async def post_ack(request: web.Request) -> web.Response:
    _rt, data, err = await _api_guard(request)
    if err is not None:
        return err
    return await _ticket_op(request, "ack", {"by": str((data or {}).get("by", "agent"))})


async def post_resolve(request: web.Request) -> web.Response:
    _rt, data, err = await _api_guard(request)
    if err is not None:
        return err
    return await _ticket_op(request, "resolve", {"by": str((data or {}).get("by", "agent"))})


async def post_ticket_callback(request: web.Request) -> web.Response:
    rt, data, err = await _api_guard(request)
    if err is not None:
        return err
    person = (data or {}).get("person")
    if not isinstance(person, str) or person not in rt.config.inventory.people:
        return _error(400, f"person: expected a person id of the inventory, got {person!r}")
    wish = _callback_wish(data or {})
    if isinstance(wish, web.Response):
        return wish
    return await _ticket_op(request, "callback", {"person": person, **wish})


def _callback_wish(data: dict[str, Any]) -> dict[str, str] | web.Response:
    """The optional note, phone and preferred time of a callback (strings of at most 500)."""
    wish = {}
    for key in ("note", "phone", "preferred_time"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 500:
            return _error(400, f"{key}: expected a string of at most 500 characters")
        wish[key] = value
    return wish


async def post_person_callback(request: web.Request) -> web.Response:
    rt, data, err = await _api_guard(request)
    if err is not None:
        return err
    person = request.match_info["person"]
    if person not in rt.config.inventory.people:
        return _error(404, f"no person {person!r} in the inventory")
    wish = _callback_wish(data or {})
    if isinstance(wish, web.Response):
        return wish
    result = await _op(rt, "callback", {"person": person, **wish})
    if not result.get("tickets"):
        return _error(404, f"no open ticket affects {person} (the wish is kept for 15 minutes in case one opens)")
    return _json({"person": person, "tickets": result["tickets"]})


def _unknown_fields(data: dict[str, Any], allowed: set[str]) -> web.Response | None:
    unknown = set(data) - allowed
    return _error(400, f"unknown field(s): {', '.join(sorted(unknown))}") if unknown else None


def _window(data: dict[str, Any], default_start: datetime | None = None
            ) -> tuple[datetime, datetime] | web.Response:
    """``starts_at``/``ends_at`` of a maintenance or silence, or the 400 that says what is wrong."""
    try:
        if default_start is not None and not data.get("starts_at"):
            start = default_start
        else:
            start = parse_time(data.get("starts_at"), "starts_at")
        end = parse_time(data.get("ends_at"), "ends_at")
    except EventError as exc:
        return _error(400, str(exc))
    if end <= start:
        return _error(400, "ends_at must be after starts_at")
    return start, end


async def post_maintenance(request: web.Request) -> web.Response:
    rt, data, err = await _api_guard(request)
    if err is not None:
        return err
    data = data or {}
    if (bad := _unknown_fields(data, {"client", "site", "starts_at", "ends_at", "reason"})) is not None:
        return bad
    inv = rt.config.inventory
    client, site = data.get("client"), data.get("site")
    if not isinstance(client, str) or client not in inv.clients:
        return _error(400, f"client: no client {client!r} in the inventory")
    if site is not None and (not isinstance(site, str) or site not in inv.sites or inv.sites[site].client != client):
        return _error(400, f"site: no site {site!r} of client {client!r}")
    window = _window(data)
    if isinstance(window, web.Response):
        return window
    start, end = window
    args = {"client": client, "site": site, "starts_at": format_time(start), "ends_at": format_time(end),
            "reason": str(data.get("reason", "")), "id": uuid.uuid4().hex[:16]}
    await _op(rt, "maintenance", args)
    return _json({"status": "success", "maintenance": args}, 201)


async def post_silence(request: web.Request) -> web.Response:
    """A label-matcher window: matching tickets open as planned (or, with ``mute``, not at all)."""
    rt, data, err = await _api_guard(request)
    if err is not None:
        return err
    data = data or {}
    if (bad := _unknown_fields(data, {"matchers", "starts_at", "ends_at", "comment", "mute"})) is not None:
        return bad
    matchers = data.get("matchers")
    if not isinstance(matchers, dict) or not matchers or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in matchers.items()):
        return _error(400, "matchers: expected a non-empty object of label: matcher strings")
    try:
        for label, spec in matchers.items():
            parse_matcher(label, spec)
    except RegexError as exc:
        return _error(400, f"matchers.{label}: bad regular expression: {exc}")
    window = _window(data, default_start=utcnow())
    if isinstance(window, web.Response):
        return window
    start, end = window
    if not isinstance(data.get("mute", False), bool):
        return _error(400, "mute: expected true or false")
    args = {"matchers": matchers, "starts_at": format_time(start), "ends_at": format_time(end),
            "comment": str(data.get("comment", "")), "mute": bool(data.get("mute", False)),
            "id": uuid.uuid4().hex[:16]}
    await _op(rt, "silence", args)
    return _json({"status": "success", "silence": args}, 201)


# ---------------------------------------------------------------- reads


async def get_tickets(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    q = request.query
    status = q.get("status")
    if status and status not in ("open", "acknowledged", "resolved"):
        return _error(400, "status: expected open, acknowledged or resolved")
    since = None
    if q.get("since"):
        try:
            since = parse_time(q["since"], "since")
        except EventError as exc:
            return _error(400, str(exc))
    try:
        limit = min(max(int(q.get("limit", "500")), 0), 5000)
        offset = max(int(q.get("offset", "0")), 0)
    except ValueError:
        return _error(400, "limit and offset must be whole numbers")
    if offset > 2**62:
        return _error(400, "offset: too large")
    docs = await asyncio.to_thread(rt.store.list_tickets, status, q.get("client"), since, limit, offset)
    return _json({"tickets": docs})


async def get_ticket(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    doc = await asyncio.to_thread(rt.store.get_ticket, request.match_info["id"])
    if doc is None:
        return _error(404, f"no ticket {request.match_info['id']}")
    from watcher.sinks import api as sinks_api

    doc["external"] = await asyncio.to_thread(sinks_api.sync_state, rt.store, doc["id"])
    return _json(doc)


async def get_outbox(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    rows = await asyncio.to_thread(rt.store.outbox_rows, request.query.get("state"))
    for r in rows:
        for k in ("created_at", "due_at", "sent_at", "claimed_at"):
            if r.get(k):
                r[k] = format_time(datetime.fromtimestamp(r[k], UTC))
    from watcher.sinks import api as sinks_api

    return _json({"outbox": rows, "counts": await asyncio.to_thread(rt.store.outbox_counts),
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
        return _error(404, f"no client {request.match_info['client']!r}")
    month = request.query.get("month", "")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        return _error(400, "month: expected YYYY-MM")
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "text", "html", "pdf"):
        return _error(400, "format: expected json, text, html or pdf")
    if not 1970 <= int(month[:4]) <= 9998:
        return _error(400, "month: out of range")
    made = await asyncio.to_thread(make, rt.store, rt.config, client, month, utcnow(), fmt == "pdf",
                                   fmt in ("html", "pdf"))
    if fmt == "text":
        return web.Response(text=render.render_text(made.report, client))
    if fmt == "html":
        return web.Response(text=made.html, content_type="text/html")
    if fmt == "pdf":
        return web.Response(body=made.pdf, content_type="application/pdf")
    return _json(render.to_json(made.report))


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
    return _json(out)


async def get_health(request: web.Request) -> web.Response:
    from watcher.api import health

    return await health.get_healthz(request)


async def get_am_status(request: web.Request) -> web.Response:
    """Enough of Alertmanager's ``/api/v2/status`` for Prometheus and tools that probe it."""
    rt = request.app[RUNTIME]
    return _json({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {"version": "watcher-0.1.0", "branch": "", "buildDate": "", "buildUser": "",
                        "goVersion": "", "revision": ""},
        "config": {"original": ""},
        "uptime": format_time(datetime.fromtimestamp(rt.started_at, UTC)),
    })


async def get_ok(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def post_reload(request: web.Request) -> web.Response:
    rt, _data, err = await _api_guard(request)
    if err is not None:
        return err
    try:
        await rt.reload()
    except Exception as exc:
        return _error(400, f"configuration rejected, the old one stays in force: {exc}")
    return _json({"status": "success"})


# ---------------------------------------------------------------- signed links


def _link_claims(request: web.Request) -> links.LinkClaims | web.Response:
    """The verified claims of the link in the path, or the 403 page that says why not."""
    try:
        return links.verify(request.app[RUNTIME].secret, request.match_info["token"], utcnow())
    except links.LinkError as exc:
        return web.Response(status=403, text=f"This link is not valid: {exc}")


async def get_link(request: web.Request) -> web.Response:
    """A signed link from a message: show a confirmation form (GET never changes anything)."""
    claims = _link_claims(request)
    if isinstance(claims, web.Response):
        return claims
    text = {"callback": "Proszę o telefon po usunięciu usterki / Please call me when it is fixed",
            "planned": "To planowana przerwa / It is a planned break",
            "failure": "To awaria – nie wiemy o żadnej planowanej przerwie / It is a failure: we know of no "
                       "planned break"}.get(claims.action, claims.action)
    fields = ""
    if claims.action == "callback":
        fields = ("<p><label>Numer telefonu (jeśli inny niż zwykle) / Phone (if not the usual one)<br>"
                  "<input name=phone maxlength=40></label></p>"
                  "<p><label>Kiedy najlepiej zadzwonić? / When is it best to call?<br>"
                  "<input name=preferred_time maxlength=100></label></p>"
                  "<p><label>Uwagi / Note<br><textarea name=note maxlength=500></textarea></label></p>")
    html = (f"<!doctype html><html lang=pl><meta charset=utf-8><title>watcher</title>"
            f"<p>Zgłoszenie / Ticket {escape(claims.ticket_id)}</p>"
            f"<form method=post>{fields}<button>{escape(text)}</button></form></html>")
    return web.Response(text=html, content_type="text/html")


async def post_link(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    claims = _link_claims(request)
    if isinstance(claims, web.Response):
        return claims
    if not await asyncio.to_thread(rt.store.use_link, claims.nonce, time.time()):
        return web.Response(status=410, text="This link was already used.")
    if claims.action == "callback":
        form = await request.post()
        wish = {k: " ".join(str(form.get(k) or "").split())[:limit]
                for k, limit in (("phone", 40), ("preferred_time", 100), ("note", 500)) if form.get(k)}
        result = await _op(rt, "callback", {"person": claims.person, "ticket": claims.ticket_id, **wish})
    else:
        result = await _op(rt, "office_answer", {"ticket": claims.ticket_id, "answer": claims.action})
    if not result.get("tickets"):
        return web.Response(status=409, text="To zgłoszenie jest już zamknięte. Dziękujemy. / "
                                             "This ticket is already closed. Thank you.")
    return web.Response(text="Dziękujemy / Thank you.")


def _read_auths(rt: Runtime) -> list[IngestAuth]:
    """The credentials a read may present: ``api``, else ``default``, else any configured one
    (a deployment that protects anything protects its reads too)."""
    for name in ("api", "default"):
        if name in rt.auth and rt.auth[name].kind != "none":
            return [rt.auth[name]]
    return [a for a in rt.auth.values() if a.kind != "none"]


@web.middleware
async def read_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every read of tickets, the outbox, stats, reports, silences and maintenances (HEAD too)
    needs a credential when any is configured: they name people and their delivery errors
    (the console's pages check the same, or its sign-in, themselves).  Every write must come
    from a JSON client, never from a page of another site (watcher.api.guard)."""
    rt = request.app[RUNTIME]
    if request.method not in guard.SAFE_METHODS:
        refused = await guard.check_write(request, rt.secret, rt.config.service.body_timeout,
                                          rt.config.service.public_url)
        if refused is not None:
            return refused
    elif guard.needs_read_credential(request):
        denied = read_denied(request, rt)
        if denied is not None:
            return denied
    response: web.StreamResponse = await handler(request)
    return response


def read_denied(request: web.Request, rt: Runtime) -> web.Response | None:
    """The 401/403 for a read without one of ``_read_auths``' credentials, or None (also when
    none is configured).  The console uses it for its pages in open mode."""
    results = [check(a, request.headers, b"", utcnow()) for a in _read_auths(rt)]
    if not results or any(r.ok for r in results):
        return None
    rt.metrics.auth_failures.labels("read").inc()
    first = results[0]
    resp = _error(first.status, first.reason)
    if first.status == 401 and first.challenge:
        resp.headers["WWW-Authenticate"] = first.challenge
    return resp


OPENAPI = Path(__file__).with_name("openapi.yaml")


async def get_openapi(request: web.Request) -> web.Response:
    """The OpenAPI description of this API (the tests check the API against it)."""
    return web.Response(text=OPENAPI.read_text(encoding="utf-8"), content_type="application/yaml")


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/openapi.yaml", get_openapi)
    r.add_post("/api/v1/events", post_events)
    r.add_post("/api/v2/alerts", post_prometheus)
    r.add_post("/api/v1/alerts", post_prometheus)
    r.add_post("/webhooks/{name}", post_webhook)
    r.add_get("/api/v2/status", get_am_status)
    r.add_get("/-/healthy", get_ok)
    r.add_get("/-/ready", get_ok)
    r.add_get("/api/v1/tickets", get_tickets)
    r.add_get("/api/v1/tickets/{id}", get_ticket)
    r.add_post("/api/v1/tickets/{id}/ack", post_ack)
    r.add_post("/api/v1/tickets/{id}/acknowledge", post_ack)
    r.add_post("/api/v1/tickets/{id}/resolve", post_resolve)
    r.add_post("/api/v1/tickets/{id}/callbacks", post_ticket_callback)
    r.add_post("/api/v1/people/{person}/callbacks", post_person_callback)
    r.add_post("/api/v1/maintenances", post_maintenance)
    r.add_post("/api/v1/silences", post_silence)
    r.add_get("/api/v1/outbox", get_outbox)
    r.add_post("/api/v1/reload", post_reload)
    r.add_get("/l/{token}", get_link)
    r.add_post("/l/{token}", post_link)
    r.add_get("/metrics", get_metrics)
    r.add_get("/healthz", get_health)
    r.add_get("/api/v1/stats", get_stats)
    r.add_get("/api/v1/reports/{client}", get_report)
    silences.routes(app)
    from watcher.api import helpdesk  # the call list, calls, escalation, office answers, disk advice

    helpdesk.routes(r)
    console.routes(app)
    reports.routes(app, lambda request: request.app[RUNTIME].store)
