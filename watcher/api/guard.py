"""What stands between a browser on another site and watcher's state: cross-site write
refusal, JSON-only writes, the console's form token, and credentials on every read.

A browser sends a cross-site request without asking first (no CORS preflight) only as a
"simple request": a form or ``fetch`` with ``application/x-www-form-urlencoded``,
``multipart/form-data``, ``text/plain`` or no body type at all.  Writes therefore require
``Content-Type: application/json`` (a browser must preflight that, and watcher answers no
preflight), except the console's own HTML forms, which carry a token only watcher's pages
know.  On top, a write whose ``Origin`` is not this host, or whose ``Sec-Fetch-Site`` says
``cross-site`` or ``same-site``, is refused outright; tools that are not browsers (curl,
Alertmanager, Prometheus) send neither header and are not affected.

Signed links (``/l/...``) are their own proof (an unguessable token in the path), so their
confirmation form needs no JSON, but it must come from watcher's own page too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPE = "application/x-www-form-urlencoded"
CSRF_FIELD = "csrf_token"
_DOMAIN = b"watcher.csrf.v1"

# reads that stay open whatever is configured: liveness for load balancers, Prometheus' scrape
# of counters (no person, ticket or address in them) and its Alertmanager discovery, the API
# description, and signed links (their token is the credential)
OPEN_READS = ("/healthz", "/-/healthy", "/-/ready", "/metrics", "/api/v2/status", "/api/openapi.yaml")


def csrf_token(secret: bytes) -> str:
    """The token the console puts in its HTML forms (``<input name=csrf_token>``).

    Derived from the link key, so every replica knows it; a page of another site cannot read
    it (same-origin policy), which is all a CSRF token has to guarantee."""
    return hmac.new(secret, _DOMAIN, hashlib.sha256).hexdigest()[:40]


def cross_site(request: web.Request, public_url: str = "") -> str | None:
    """Why a request comes from another site, or None.  Only browsers send these headers.

    The origin of ``public_url`` (what links in messages point at) is this site too, for a
    reverse proxy that does not pass the browser's ``Host`` on."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if fetch_site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site: {fetch_site}"
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    origin = origin.strip()
    if origin == "null":
        return "Origin: null"
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        return "Origin: not an origin"
    if public_url:
        public = urlsplit(public_url)
        if (public.scheme, public.netloc.lower()) == (parts.scheme, parts.netloc.lower()):
            return None
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = (request.host or "").lower()
    theirs = parts.netloc.lower()
    if theirs != host and not (parts.port is None and default and host == f"{theirs}:{default}") and \
            not (":" in theirs and default and theirs == f"{host}:{default}"):
        return f"Origin: {origin} is not this host"
    return None


def is_json(content_type: str) -> bool:
    main = content_type.split(";", 1)[0].strip().lower()
    return main == "application/json" or (main.startswith("application/") and main.endswith("+json"))


async def read_within(request: web.Request, seconds: float) -> bytes:
    """The whole body, or the connection closed if it does not arrive within ``seconds``
    (a client that opens a request and stalls must not hold a connection for ever)."""
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        if request.transport is not None:
            request.transport.close()
        raise web.HTTPRequestTimeout(text=f"the request body did not arrive within {seconds:g} s") from None


async def check_write(request: web.Request, secret: bytes, body_timeout: float = 30.0,
                      public_url: str = "") -> web.Response | None:
    """The 403/415 for a write that a browser on another site could have made, or None."""
    why = cross_site(request, public_url)
    if why is not None:
        return _refuse(403, f"cross-site request refused ({why})")
    if request.path.startswith(("/l/", "/console/")):  # the console's handlers check JSON themselves
        return None
    content_type = request.headers.get("Content-Type", "")
    if is_json(content_type):
        return None
    if content_type.split(";", 1)[0].strip().lower() == FORM_TYPE and request.path.startswith("/api/v1/"):
        await read_within(request, body_timeout)  # post() then parses what is already read
        form = await request.post()
        token = form.get(CSRF_FIELD)
        if isinstance(token, str) and hmac.compare_digest(token.encode(), csrf_token(secret).encode()):
            return None
        return _refuse(403, f"form without a valid {CSRF_FIELD}")
    return _refuse(415, "writes take 'Content-Type: application/json' (forms of the console carry a "
                        f"{CSRF_FIELD}); got {content_type or 'no Content-Type'!r}")


async def form_fields(request: web.Request) -> dict[str, Any] | None:
    """The fields of a console form (already checked by ``check_write``), or None for JSON."""
    if request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower() != FORM_TYPE:
        return None
    form = await request.post()
    return {k: v for k, v in form.items() if k != CSRF_FIELD and isinstance(v, str)}


def needs_read_credential(request: web.Request) -> bool:
    """Reads that show tickets, people, delivery errors, reports or stats."""
    if request.method not in ("GET", "HEAD"):
        return False
    path = request.path
    if path in OPEN_READS or path.startswith("/l/"):
        return False
    return path.startswith("/api/")  # the console (/, /console/...) guards its pages itself, alike


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status)
