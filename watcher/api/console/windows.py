"""Silences and maintenance windows: ``/console/silences`` and the ``silence`` and
``maintenance`` actions of ``POST /console/act``.

The page lists what is in force as the engine's leader committed it (from any replica), in
the client's local time; the forms create a silence (label matchers typed as text) or a
client's or office's maintenance, through the same ops as the API (``common.submit_op``),
so replay gives the same tickets.  A form's local ``YYYY-MM-DDTHH:MM`` is read in the
client's zone.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from watcher.api.common import submit_op
from watcher.api.console.common import Action, base, err, guarded, html, log, page, runtime
from watcher.api.console.times import UTC_ZONE, ts_local, zone_of
from watcher.api.console.words import words
from watcher.config.rules import parse_matcher
from watcher.model import EventError, format_time, parse_time, utcnow
from watcher.runtime import Runtime


async def get_silences(request: web.Request) -> web.Response:
    agent, lang = await guarded(request)
    rt = runtime(request)
    state = await asyncio.to_thread(rt.store.engine_doc)  # as the leader committed it, from any replica
    now = utcnow()
    silences = []
    for s in state.get("silences", []):
        if s.get("end", 0) < now.timestamp():
            continue
        silences.append({"id": s.get("id"), "matchers": s.get("matchers", {}), "comment": s.get("reason", ""),
                         "mute": s.get("mute"), "from": ts_local(s.get("start"), now),
                         "until": ts_local(s.get("end"), now)})
    maints = []
    for m in state.get("maintenances", []):
        if m.get("end", 0) < now.timestamp():
            continue
        zone = zone_of(rt.config, m.get("client"))
        site = rt.config.inventory.sites.get(m.get("site") or "")
        client = rt.config.inventory.clients.get(m.get("client") or "")
        maints.append({"client": client.name if client else m.get("client"), "site": site.name if site else "",
                       "reason": m.get("reason", ""), "from": ts_local(m.get("start"), now, zone),
                       "until": ts_local(m.get("end"), now, zone)})
    can_lift = any(r.method == "DELETE" and "silences" in (r.resource.canonical if r.resource else "")
                   for r in request.app.router.routes())
    inv = rt.config.inventory
    ctx = {**base(request, agent, lang, words(lang)["silences"], "silences"), "silences": silences,
           "maintenances": maints, "can_lift": can_lift,
           "clients": sorted((c.id, c.name) for c in inv.clients.values()),
           "sites": sorted((s.id, f"{s.name} ({s.client})") for s in inv.sites.values())}
    return html(page("silences.html", **ctx))


# ---------------------------------------------------------------- actions (POST /console/act)

_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")


def _times(data: dict[str, Any], zone: ZoneInfo) -> tuple[datetime, datetime] | web.Response:
    """``starts_at``/``ends_at`` as RFC 3339, or local ``YYYY-MM-DDTHH:MM`` of a form in ``zone``."""
    out = []
    for key in ("starts_at", "ends_at"):
        raw = data.get(key)
        if key == "starts_at" and not raw:
            out.append(utcnow())
            continue
        if not isinstance(raw, str):
            return err(400, f"{key}: expected a time")
        try:
            if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?", raw):
                out.append(datetime.fromisoformat(raw).replace(tzinfo=zone).astimezone(UTC))
            else:
                out.append(parse_time(raw, key))
        except (EventError, ValueError) as exc:
            return err(400, f"{key}: {exc}")
    start, end = out
    if end <= start:
        return err(400, "ends_at must be after starts_at")
    if end - start > timedelta(days=366):
        return err(400, "ends_at: at most a year after starts_at")
    return start, end


async def _silence(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:
    matchers = data.get("matchers")
    if isinstance(matchers, str):  # the form's text: "host=~krk-pbx.*, alertname=LinkDown"
        parsed: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in matchers.split(","))):
            m = _MATCHER.fullmatch(part)
            if m is None:
                return err(400, f"matchers: {part!r} is not label=value, label!=value, label=~regex or label!~regex")
            label, op, value = m.groups()
            parsed[label] = value if op == "=" else op + value
        matchers = parsed
    if not isinstance(matchers, dict) or not matchers or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in matchers.items()):
        return err(400, "matchers: expected label=value pairs")
    try:
        for label, spec in matchers.items():
            parse_matcher(label, spec)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        return err(400, f"matchers: {exc}")
    window = _times(data, UTC_ZONE if not data.get("client") else zone_of(rt.config, str(data.get("client"))))
    if isinstance(window, web.Response):
        return window
    comment = str(data.get("comment", ""))[:500]
    args = {"matchers": matchers, "starts_at": format_time(window[0]), "ends_at": format_time(window[1]),
            "comment": f"{comment} ({agent})" if comment else f"({agent})", "mute": bool(data.get("mute", False))}
    await submit_op(rt, "silence", args)
    log.info("console: %s: silence %s until %s", agent, matchers, args["ends_at"])
    return web.json_response({"status": "success", "silence": args}, status=201)


async def _maintenance(rt: Runtime, data: dict[str, Any], agent: str) -> web.Response:
    inv = rt.config.inventory
    client, site = data.get("client"), data.get("site") or None
    if isinstance(site, str) and site in inv.sites and not client:
        client = inv.sites[site].client
    if not isinstance(client, str) or client not in inv.clients:
        return err(400, f"client: no client {client!r} in the inventory")
    if site is not None and (not isinstance(site, str) or site not in inv.sites or inv.sites[site].client != client):
        return err(400, f"site: no site {site!r} of client {client!r}")
    window = _times(data, zone_of(rt.config, client))
    if isinstance(window, web.Response):
        return window
    reason = str(data.get("reason", ""))[:500]
    args = {"client": client, "site": site, "starts_at": format_time(window[0]), "ends_at": format_time(window[1]),
            "reason": f"{reason} ({agent})" if reason else f"({agent})"}
    await submit_op(rt, "maintenance", args)
    log.info("console: %s: maintenance %s %s until %s", agent, client, site or "", args["ends_at"])
    return web.json_response({"status": "success", "maintenance": args}, status=201)


ACTIONS: dict[str, Action] = {"silence": _silence, "maintenance": _maintenance}

ROUTES: list[web.RouteDef] = [web.get("/console/silences", get_silences)]
