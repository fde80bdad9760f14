"""``POST /console/act``: every write an agent makes from a page, one JSON body per action.

``{"action": "ack"|"resolve"|"planned"|"callback"|"call"|"escalate"|"office"|"silence"|
"maintenance"|"lang", ...}``.  The page ``fetch()``es it; a body that is not JSON, or a
request whose ``Origin`` (or ``Sec-Fetch-Site``) is not this site, is refused, so another
site cannot make an agent's browser act.  The agent's name comes from the session, never from
the body.

The actions are a table: each page's module lists its own in ``ACTIONS`` (``ticket``,
``calls``, ``windows``), and a new action is a function there plus one row.  ``lang`` is
answered here: it only re-signs the session cookie with the new language.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from watcher.api import console_auth as ca
from watcher.api.console import calls, ticket, windows
from watcher.api.console.common import (
    Action,
    console_config,
    err,
    json_body,
    refuse_cross_site,
    runtime,
    set_cookie,
    who,
)
from watcher.runtime import Runtime


async def _lang(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:  # handled in post_act
    return err(400, "lang")


def _join(*tables: dict[str, Action]) -> dict[str, Action]:
    """The modules' tables as one; an action two of them name is an error, not a silent override."""
    joined: dict[str, Action] = {}
    for table in tables:
        for key, action in table.items():
            if key in joined:
                raise ValueError(f"console action {key!r} is listed twice")
            joined[key] = action
    return joined


ACTIONS = _join(ticket.ACTIONS, calls.ACTIONS, windows.ACTIONS, {"lang": _lang})


async def post_act(request: web.Request) -> web.Response:
    """One agent action: ``{"action": "ack"|"resolve"|"planned"|"callback"|"call"|"escalate"|
    "office"|"silence"|"maintenance"|"lang", ...}``; the agent is the session's."""
    if (refused := refuse_cross_site(request)) is not None:
        return refused
    name, _lang_now, stop = await who(request)
    if stop is not None:
        return stop if isinstance(stop, web.Response) else err(401, "sign in first")
    if name is None:
        return err(401, "sign in first")
    data = await json_body(request)
    if isinstance(data, web.Response):
        return data
    rt = runtime(request)
    action = data.get("action")
    handler = ACTIONS.get(action) if isinstance(action, str) else None
    if handler is None:
        return err(400, f"action: expected one of {', '.join(sorted(ACTIONS))}")
    if action == "lang":
        new = data.get("lang")
        if new not in ca.LANGUAGES:
            return err(400, "lang: expected pl or en")
        resp = web.json_response({"status": "success", "lang": new})
        cc = console_config(rt)
        set_cookie(resp, rt, ca.Session(name, str(new), time.time() + cc.session_hours * 3600), request)
        return resp
    result: web.Response = await handler(rt, data, name)
    return result


ROUTES: list[web.RouteDef] = [web.post("/console/act", post_act)]
