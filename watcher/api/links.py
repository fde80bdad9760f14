"""Signed single-use links from messages (a callback request, the office's answer): a GET
shows a confirmation form and changes nothing; the POST acts, through the inbox."""

from __future__ import annotations

import asyncio
import time
from html import escape

from aiohttp import web

from watcher.api.common import submit_op
from watcher.model import utcnow
from watcher.notify import links
from watcher.runtime import RUNTIME


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
        result = await submit_op(rt, "callback", {"person": claims.person, "ticket": claims.ticket_id, **wish})
    else:
        result = await submit_op(rt, "office_answer", {"ticket": claims.ticket_id, "answer": claims.action})
    if not result.get("tickets"):
        return web.Response(status=409, text="To zgłoszenie jest już zamknięte. Dziękujemy. / "
                                             "This ticket is already closed. Thank you.")
    return web.Response(text="Dziękujemy / Thank you.")


ROUTES = [web.get("/l/{token}", get_link), web.post("/l/{token}", post_link)]
