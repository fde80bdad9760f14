"""What every handler of the HTTP API shares: JSON answers and errors, strict body reading,
credentials per path, the guard of agents' writes, operations through the inbox, and the
middleware that guards reads and refuses cross-site writes.

Handlers live in one module per resource (``ingest``, ``tickets``, ``windows``, ``links``,
``admin``, ``helpdesk``, ...); ``watcher.api.http.routes`` assembles their route tables.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from watcher.api import guard, retries
from watcher.api.auth import IngestAuth, check
from watcher.model import op_json, utcnow
from watcher.runtime import RUNTIME, Runtime
from watcher.store import InboxRow


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` as a JSON answer (UTF-8 kept as is, not escaped)."""
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def error(status: int, message: str) -> web.Response:
    """The API's error answer: ``{"status": "error", "error": message}``."""
    return json_response({"status": "error", "error": message}, status)


def parse_json(body: bytes) -> Any:
    """The request body as JSON, strictly: no NaN/Infinity, no unpaired surrogates, no nesting
    deep enough to exhaust the parser.  Raises ValueError with a message for the client."""
    try:
        return orjson.loads(body)  # strict by design: NaN, lone surrogates and depth > 1024 are errors
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None


def auth_for(rt: Runtime, path: str) -> IngestAuth:
    """The credential configured for ``path``, else ``default``, else none."""
    return rt.auth.get(path) or rt.auth.get("default") or IngestAuth()


async def authorized(request: web.Request, rt: Runtime, path: str, body: bytes) -> web.Response | None:
    """None when the request carries ``path``'s credential (a signature once only), else the 401/403."""
    auth = auth_for(rt, path)
    now = utcnow()
    result = check(auth, request.headers, body, now)
    if result.ok:
        if auth.kind == "hmac" and not await retries.first_use(rt.store, auth, request.headers, now):
            rt.metrics.auth_failures.labels(path).inc()
            return error(401, "this signature was used before; sign the request again (a replay)")
        return None
    rt.metrics.auth_failures.labels(path).inc()
    resp = error(result.status, result.reason)
    if result.status == 401 and getattr(result, "challenge", None):
        resp.headers["WWW-Authenticate"] = str(result.challenge)
    return resp


async def read_body(request: web.Request, rt: Runtime) -> bytes:
    """The body within ``max_body_bytes`` and ``body_timeout`` (413 or a closed connection otherwise)."""
    limit = rt.config.service.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = await guard.read_within(request, rt.config.service.body_timeout)
    if len(body) > limit:  # a chunked body has no Content-Length to check up front
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


async def submit_op(rt: Runtime, kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """An operation through the inbox, like every change, so that replay gives the same tickets:
    the engine's answer once it is committed."""
    row = InboxRow("op", "api", f"op|{uuid.uuid4().hex}", time.time(),
                   orjson.dumps(op_json(kind, utcnow(), args)).decode())
    seqs = await rt.ingestor.submit([row])
    seq = seqs[0]
    assert seq is not None
    return await rt.worker.wait_for(seq)


async def api_guard(request: web.Request) -> tuple[Runtime, dict[str, Any] | None, web.Response | None]:
    """The guard of an agent's write: (runtime, its JSON object or form, or the error to answer)."""
    rt = request.app[RUNTIME]
    try:
        body = await read_body(request, rt)
    except web.HTTPRequestEntityTooLarge:
        return rt, None, error(413, f"body larger than {rt.config.service.max_body_bytes} bytes")
    denied = None
    if "api" in rt.auth or "default" in rt.auth:
        denied = await authorized(request, rt, "api", body)
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
        return rt, None, error(400, f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return rt, None, error(400, "body must be a JSON object")
    return rt, data, None


def unknown_fields(data: dict[str, Any], allowed: set[str]) -> web.Response | None:
    """The 400 naming the fields of ``data`` not in ``allowed``, or None."""
    unknown = set(data) - allowed
    return error(400, f"unknown field(s): {', '.join(sorted(unknown))}") if unknown else None


def read_auths(rt: Runtime) -> list[IngestAuth]:
    """The credentials a read may present: ``api``, else ``default``, else any configured one
    (a deployment that protects anything protects its reads too)."""
    for name in ("api", "default"):
        if name in rt.auth and rt.auth[name].kind != "none":
            return [rt.auth[name]]
    return [a for a in rt.auth.values() if a.kind != "none"]


@web.middleware
async def read_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
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
    """The 401/403 for a read without one of ``read_auths``' credentials, or None (also when
    none is configured).  The console uses it for its pages in open mode."""
    results = [check(a, request.headers, b"", utcnow()) for a in read_auths(rt)]
    if not results or any(r.ok for r in results):
        return None
    rt.metrics.auth_failures.labels("read").inc()
    first = results[0]
    resp = error(first.status, first.reason)
    if first.status == 401 and first.challenge:
        resp.headers["WWW-Authenticate"] = first.challenge
    return resp
