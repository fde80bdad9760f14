"""What every page and write of the console shares: who is asking, the templates, the HTML
answer, and the guards of a write.

- ``guarded(request)``: the agent and language for a page, or the sign-in page (or the 401/403
  of a missing credential) instead; ``who`` is the same without the redirect, for writes;
- ``page`` renders a template of ``watcher/api/templates``, ``html`` answers it with the
  headers that keep it out of caches and frames, ``base`` is the context every page starts
  from (words, language, agent, title, menu entry, refresh);
- ``refuse_cross_site`` and ``json_body``: a write is JSON ``fetch()``ed from a page of this
  site, never a form another site could post;
- ``person``: a person of the inventory (or a site's office contact) as the pages show them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import jinja2
from aiohttp import web

from watcher.api import console_auth as ca
from watcher.api.common import parse_json, read_auths, read_denied
from watcher.api.console.words import words
from watcher.config import Config
from watcher.runtime import RUNTIME, Runtime

# one logger for all the console's modules, named as it was before they were split (the JSON
# log lines carry the logger's name)
log = logging.getLogger("watcher.api.console")

REFRESH_SECONDS = 5

Action = Callable[[Runtime, dict[str, Any], str], Awaitable[web.Response]]
"""One agent action of ``POST /console/act``: (runtime, the request's JSON object, the agent's
name) to the answer.  Each page's module lists its own in an ``ACTIONS`` table; ``act`` joins them."""

# ---------------------------------------------------------------- who is asking


def runtime(request: web.Request) -> Runtime:
    """The running service's parts (``app[RUNTIME]``)."""
    return request.app[RUNTIME]


def console_config(rt: Runtime) -> ca.ConsoleConfig:
    """``console:`` of watcher.yaml, or the defaults (an open console) when it is absent."""
    return rt.config.service.console or ca.ConsoleConfig()


async def who(request: web.Request) -> tuple[str | None, str, web.StreamResponse | None]:
    """(agent name, language, or the response that stops the request)."""
    rt = runtime(request)
    cc = console_config(rt)
    session = ca.read_cookie(rt.secret, request.cookies.get(ca.COOKIE))
    lang = session.lang if session else cc.language
    if cc.mode == "proxy":
        name = ca.proxy_user(cc, request.headers)
        if name is None:
            return None, lang, web.Response(status=401, text=f"the proxy did not send {cc.proxy_header}")
        return name, lang, None
    if cc.mode == "open" and read_auths(rt):  # any configured credential guards the reads
        denied = read_denied(request, rt)
        if denied is not None:
            return None, lang, denied
    if session is None:
        return None, lang, None
    return session.name, lang, None


def _to_login(request: web.Request) -> NoReturn:
    raise web.HTTPSeeOther(location="/console/login")


async def guarded(request: web.Request) -> tuple[str, str]:
    """The agent and language for a page; without a session, the sign-in page, except on an
    open console (no users, no proxy, no API credential), whose pages are as readable as the
    API is, and which asks for a name only when the agent acts."""
    name, lang, stop = await who(request)
    if stop is not None:
        raise _as_exception(stop)
    if name is None:
        rt = runtime(request)
        if console_config(rt).mode == "open" and not read_auths(rt):
            return "", lang
        _to_login(request)
    return name, lang


def _as_exception(resp: web.StreamResponse) -> web.HTTPException:
    exc = web.HTTPException(headers=resp.headers)
    exc.set_status(resp.status)
    if isinstance(resp, web.Response) and resp.body is not None:
        exc.body = resp.body
    return exc


def set_cookie(resp: web.StreamResponse, rt: Runtime, session: ca.Session, request: web.Request) -> None:
    """The signed session cookie: HttpOnly, SameSite=Strict, until the session expires."""
    resp.set_cookie(ca.COOKIE, ca.make_cookie(rt.secret, session), httponly=True, samesite="Strict", path="/",
                    max_age=int(max(0, session.expires - time.time())), secure=request.secure)


# ---------------------------------------------------------------- pages

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent.with_name("templates")),
                          autoescape=True, trim_blocks=True, lstrip_blocks=True)


def page(name: str, **context: Any) -> str:
    """The template ``name`` rendered (autoescaped) with ``context``."""
    return _env.get_template(name).render(**context)


def html(text: str) -> web.Response:
    """A page as the answer: never cached, never framed, scripts and styles of this site only."""
    resp = web.Response(text=text, content_type="text/html")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
    return resp


def base(request: web.Request, agent: str, lang: str, title: str, active: str) -> dict[str, object]:
    """The context every page's template starts from (``_base.html`` reads it)."""
    rt = runtime(request)
    return {"w": words(lang), "lang": lang, "agent": agent, "title": title, "active": active,
            "mode": console_config(rt).mode, "refresh": REFRESH_SECONDS}


def person(config: Config, pid: str) -> dict[str, str | None]:
    """A person of the inventory as the pages show them (name, phone, mail, office); an
    ``office:<site>`` id is that site's office contact; an unknown id shows as itself."""
    p = config.inventory.people.get(pid)
    if p is None:
        if pid.startswith("office:"):
            site = config.inventory.sites.get(pid[len("office:"):])
            contact = site.office_contact if site else None
            return {"id": pid, "name": f"{site.name if site else pid}: {contact.name if contact else ''}",
                    "phone": contact.phone if contact else None, "email": contact.email if contact else None,
                    "site": site.name if site else ""}
        return {"id": pid, "name": pid, "phone": None, "email": None, "site": ""}
    site = config.inventory.sites.get(p.site or "")
    return {"id": p.id, "name": p.name, "phone": p.phone, "email": p.email or _mail_of(p.notify),
            "site": site.name if site else ""}


def _mail_of(urls: tuple[str, ...]) -> str | None:
    for url in urls:
        if url.startswith("mailto://"):
            rest = url[len("mailto://"):].split("?", 1)[0]
            return rest if "@" in rest and ":" not in rest.split("@", 1)[0] else None
    return None


# ---------------------------------------------------------------- writes


def err(status: int, message: str) -> web.Response:
    """A write's error answer: ``{"status": "error", "error": message}``."""
    return web.json_response({"status": "error", "error": message}, status=status)


def refuse_cross_site(request: web.Request) -> web.Response | None:
    """A write must come from a page of this site: ``Sec-Fetch-Site: same-origin`` or an
    ``Origin`` equal to the request's own; without either, it is refused."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return err(403, "cross-site request refused")
    if origin is not None:
        own = f"{request.scheme}://{request.host}"
        if origin != own:
            return err(403, "cross-site request refused")
        return None
    if fetch_site in ("same-origin", "none"):
        return None
    return err(403, "a console write needs an Origin header of this site")


async def json_body(request: web.Request) -> dict[str, Any] | web.Response:
    """A write's body: a JSON object of at most ``max_body_bytes`` (and 1 MiB), else the 4xx."""
    if request.content_type != "application/json":
        return err(415, "expected a JSON body (Content-Type: application/json)")
    rt = runtime(request)
    body = await request.read()
    if len(body) > min(rt.config.service.max_body_bytes, 1 << 20):
        return err(413, "body too large")
    try:
        data = parse_json(body)
    except ValueError as exc:
        return err(400, f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return err(400, "body must be a JSON object")
    return data
