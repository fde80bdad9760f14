"""Silences and maintenance windows as resources: list them and lift them.

They are made by ``POST`` (watcher.api.windows) and live in the engine's state.  ``GET`` reads
them from the store (the engine commits its state with every operation's answer, so any
replica sees what the leader holds); ``DELETE`` is an operation through the inbox like the
others, so the engine lifts it in order with everything else.  A muting silence made by
mistake (or by someone else) can thus be seen and removed, from the API or with ``watcher
silences list|delete``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from watcher.model import format_time
from watcher.rules.windows import window_id


def _when(ts: Any) -> str | None:
    return format_time(datetime.fromtimestamp(float(ts), UTC)) if isinstance(ts, int | float) else None


def silence_doc(entry: dict[str, Any]) -> dict[str, Any]:
    return {"id": window_id(entry), "matchers": entry.get("matchers", {}), "starts_at": _when(entry.get("start")),
            "ends_at": _when(entry.get("end")), "comment": entry.get("reason", ""), "mute": bool(entry.get("mute"))}


def maintenance_doc(entry: dict[str, Any]) -> dict[str, Any]:
    return {"id": window_id(entry), "client": entry.get("client"), "site": entry.get("site"),
            "starts_at": _when(entry.get("start")), "ends_at": _when(entry.get("end")),
            "reason": entry.get("reason", "")}


async def listed(request: web.Request, what: str) -> list[dict[str, Any]]:
    """The silences (or maintenances) the engine holds now, oldest first."""
    from watcher.runtime import RUNTIME

    rt = request.app[RUNTIME]
    _cursor, state = await asyncio.to_thread(rt.store.load_engine)
    entries = (state or {}).get("silences" if what == "silence" else "maintenances", [])
    now = datetime.now(UTC).timestamp()
    doc = silence_doc if what == "silence" else maintenance_doc
    return [doc(e) for e in entries if float(e.get("end", 0)) >= now]


async def get_silences(request: web.Request) -> web.Response:
    return web.json_response({"silences": await listed(request, "silence")})


async def get_maintenances(request: web.Request) -> web.Response:
    return web.json_response({"maintenances": await listed(request, "maintenance")})


async def _delete(request: web.Request, what: str) -> web.Response:
    from watcher.api.common import api_guard, error, submit_op

    rt, _data, err = await api_guard(request)
    if err is not None:
        return err
    wid = request.match_info["id"]
    result = await submit_op(rt, "expire", {"what": what, "id": wid})
    if not result.get("ok"):
        return error(404, f"no {what} {wid!r}")
    return web.json_response({"status": "success", "deleted": wid})


async def delete_silence(request: web.Request) -> web.Response:
    return await _delete(request, "silence")


async def delete_maintenance(request: web.Request) -> web.Response:
    return await _delete(request, "maintenance")


ROUTES = [
    web.get("/api/v1/silences", get_silences),
    web.delete("/api/v1/silences/{id}", delete_silence),
    web.get("/api/v1/maintenances", get_maintenances),
    web.delete("/api/v1/maintenances/{id}", delete_maintenance),
]
