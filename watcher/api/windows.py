"""Maintenance windows and silences: made here by ``POST``; listed and lifted by
``watcher.api.silences``.  Both are operations through the inbox, so the engine applies
them in order with everything else."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from watcher.api import silences
from watcher.api.common import api_guard, error, json_response, submit_op, unknown_fields
from watcher.config.regex import RegexError
from watcher.config.rules import parse_matcher
from watcher.model import EventError, format_time, parse_time, utcnow


def time_window(data: dict[str, Any], default_start: datetime | None = None
            ) -> tuple[datetime, datetime] | web.Response:
    """``starts_at``/``ends_at`` of a maintenance or silence, or the 400 that says what is wrong."""
    try:
        if default_start is not None and not data.get("starts_at"):
            start = default_start
        else:
            start = parse_time(data.get("starts_at"), "starts_at")
        end = parse_time(data.get("ends_at"), "ends_at")
    except EventError as exc:
        return error(400, str(exc))
    if end <= start:
        return error(400, "ends_at must be after starts_at")
    return start, end


async def post_maintenance(request: web.Request) -> web.Response:
    rt, data, err = await api_guard(request)
    if err is not None:
        return err
    data = data or {}
    if (bad := unknown_fields(data, {"client", "site", "starts_at", "ends_at", "reason"})) is not None:
        return bad
    inv = rt.config.inventory
    client, site = data.get("client"), data.get("site")
    if not isinstance(client, str) or client not in inv.clients:
        return error(400, f"client: no client {client!r} in the inventory")
    if site is not None and (not isinstance(site, str) or site not in inv.sites or inv.sites[site].client != client):
        return error(400, f"site: no site {site!r} of client {client!r}")
    window = time_window(data)
    if isinstance(window, web.Response):
        return window
    start, end = window
    args = {"client": client, "site": site, "starts_at": format_time(start), "ends_at": format_time(end),
            "reason": str(data.get("reason", "")), "id": uuid.uuid4().hex[:16]}
    await submit_op(rt, "maintenance", args)
    return json_response({"status": "success", "maintenance": args}, 201)


async def post_silence(request: web.Request) -> web.Response:
    """A label-matcher window: matching tickets open as planned (or, with ``mute``, not at all)."""
    rt, data, err = await api_guard(request)
    if err is not None:
        return err
    data = data or {}
    if (bad := unknown_fields(data, {"matchers", "starts_at", "ends_at", "comment", "mute"})) is not None:
        return bad
    matchers = data.get("matchers")
    if not isinstance(matchers, dict) or not matchers or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in matchers.items()):
        return error(400, "matchers: expected a non-empty object of label: matcher strings")
    try:
        for label, spec in matchers.items():
            parse_matcher(label, spec)
    except RegexError as exc:
        return error(400, f"matchers.{label}: bad regular expression: {exc}")
    window = time_window(data, default_start=utcnow())
    if isinstance(window, web.Response):
        return window
    start, end = window
    if not isinstance(data.get("mute", False), bool):
        return error(400, "mute: expected true or false")
    args = {"matchers": matchers, "starts_at": format_time(start), "ends_at": format_time(end),
            "comment": str(data.get("comment", "")), "mute": bool(data.get("mute", False)),
            "id": uuid.uuid4().hex[:16]}
    await submit_op(rt, "silence", args)
    return json_response({"status": "success", "silence": args}, 201)


ROUTES = [
    web.post("/api/v1/maintenances", post_maintenance),
    web.post("/api/v1/silences", post_silence),
    *silences.ROUTES,
]
