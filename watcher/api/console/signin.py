"""Signing in and out: ``/console/login`` (the page and its ``POST``) and ``/console/logout``.

How an agent is known depends on ``console:`` of watcher.yaml (``console_auth``): with
``users``, a name and an Argon2-checked password; behind a proxy, the proxy's header (nothing
to sign in to here); otherwise only a name, checked against the API credential when there is
one.  A success sets the signed session cookie (``common.set_cookie``) that carries the name
and the language into every later request.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from watcher.api import console_auth as ca
from watcher.api.common import authorized
from watcher.api.console.common import (
    base,
    console_config,
    err,
    html,
    json_body,
    log,
    page,
    refuse_cross_site,
    runtime,
    set_cookie,
)
from watcher.api.console.words import words


async def get_login(request: web.Request) -> web.Response:
    rt = runtime(request)
    cc = console_config(rt)
    lang = request.query.get("lang") if request.query.get("lang") in ca.LANGUAGES else cc.language
    ctx = {**base(request, "", str(lang), words(str(lang))["sign_in"], "login"), "needs_password": cc.mode == "users"}
    return html(page("login.html", **ctx))


async def post_login(request: web.Request) -> web.Response:
    rt = runtime(request)
    if (refused := refuse_cross_site(request)) is not None:
        return refused
    data = await json_body(request)
    if isinstance(data, web.Response):
        return data
    cc = console_config(rt)
    name, password = data.get("name"), data.get("password", "")
    lang = data.get("lang") if data.get("lang") in ca.LANGUAGES else cc.language
    if not isinstance(name, str) or not name.strip() or len(name) > 120 or not isinstance(password, str):
        return err(400, "name: expected a non-empty string")
    if cc.mode == "proxy":
        return err(400, "the console takes the agent's name from the proxy; there is nothing to sign in to")
    if cc.mode == "users":
        user = cc.user(name)
        if not await asyncio.to_thread(ca.verify_password, user, password):
            log.warning("console: failed sign-in for %r", name[:60])
            return err(401, "wrong name or password")
        assert user is not None
        name = user.display or user.name
    elif "api" in rt.auth:
        denied = await authorized(request, rt, "api", b"")
        if denied is not None:
            return denied
    name = name.strip()
    session = ca.Session(name, str(lang), time.time() + cc.session_hours * 3600)
    resp = web.json_response({"status": "success", "name": name})
    set_cookie(resp, rt, session, request)
    log.info("console: %s signed in", name)
    return resp


async def post_logout(request: web.Request) -> web.Response:
    if (refused := refuse_cross_site(request)) is not None:
        return refused
    resp = web.json_response({"status": "success"})
    resp.del_cookie(ca.COOKIE, path="/")
    return resp


ROUTES: list[web.RouteDef] = [web.get("/console/login", get_login), web.post("/console/login", post_login),
                              web.post("/console/logout", post_logout)]
