"""Request Tracker 5 through its REST 2.0 API (``/REST/2.0``; RT's lib/RT/REST2.pm documents it).

* create: ``POST /ticket`` with Queue, Subject, Content (text/plain), Requestor and the
  configured custom fields; the answer names the new ticket's id.
* find: a TicketSQL search (``POST /tickets`` with ``query``) by the custom field that holds
  watcher's id when one is configured, else by the ``[watcher T-...]`` subject.
* comment: ``POST /ticket/:id/comment`` (internal: requestors get no mail from it).
* resolve: ``POST /ticket/:id/comment`` then ``PUT /ticket/:id`` with ``Status: resolved``.
* poll: tickets of the queue with ``LastUpdated`` after the cursor, with their Status and
  Owner: a taken ticket (an Owner other than Nobody) or one an agent opened acknowledges
  watcher's ticket; ``resolved`` (or ``rejected``) resolves it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp

from watcher.config.sinks import RtConfig
from watcher.sinks.base import AgentAction, Draft, ExternalRef, Sink, SinkError

DONE = ("resolved", "rejected", "deleted")


def _quote(value: str) -> str:
    """A TicketSQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class RtSink(Sink[RtConfig]):
    config_type = RtConfig

    @property
    def api(self) -> str:
        return self.cfg.url + "/REST/2.0"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.cfg.token}"} if self.cfg.token else {}

    def auth(self) -> aiohttp.BasicAuth | None:
        return None if self.cfg.token else aiohttp.BasicAuth(self.cfg.username, self.cfg.password)

    def link(self, ext_id: str) -> str:
        return f"{self.cfg.url}/Ticket/Display.html?id={ext_id}"

    async def search(self, query: str, fields: str = "Subject,Status,Owner,LastUpdated") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            form = {"query": query, "fields": fields, "orderby": "LastUpdated", "order": "ASC", "per_page": "100",
                    "page": str(page)}
            got = await self.call("POST", f"{self.api}/tickets", data=urlencode(form).encode(),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
            items += (got or {}).get("items", [])
            if page >= int((got or {}).get("pages") or 1) or page >= 50:
                return items
            page += 1

    async def find(self, ticket_id: str) -> ExternalRef | None:
        if self.cfg.id_field:
            cond = f"CF.{{{self.cfg.id_field}}} = {_quote(ticket_id)}"
        else:
            cond = f"Subject LIKE {_quote('[watcher ' + ticket_id + ']')}"
        items = await self.search(f"Queue = {_quote(self.cfg.queue)} AND {cond}", fields="Subject")
        for item in items:
            if self.cfg.id_field or f"[watcher {ticket_id}]" in str(item.get("Subject", "")):
                return ExternalRef(str(item["id"]), self.link(str(item["id"])))
        return None

    async def create(self, draft: Draft, idem: str) -> ExternalRef:
        body: dict[str, Any] = {"Queue": self.cfg.queue, "Subject": draft.subject, "Content": draft.body,
                                "ContentType": "text/plain"}
        if self.cfg.requestor:
            body["Requestor"] = self.cfg.requestor
        cfs = {k: v.replace("{ticket}", draft.ticket_id).replace("{client}", draft.client)
               for k, v in self.cfg.custom_fields.items()}
        if self.cfg.id_field:
            cfs[self.cfg.id_field] = draft.ticket_id
        if cfs:
            body["CustomFields"] = cfs
        got = await self.call("POST", f"{self.api}/ticket", body)
        if not isinstance(got, dict) or not got.get("id"):
            raise SinkError(f"RT did not name the new ticket: {str(got)[:200]}", retryable=False)
        return ExternalRef(str(got["id"]), self.link(str(got["id"])))

    async def comment(self, ref: ExternalRef, text: str, idem: str = "") -> None:
        await self.call("POST", f"{self.api}/ticket/{ref.id}/comment", {"Content": text, "ContentType": "text/plain"})

    async def resolve(self, ref: ExternalRef, text: str, idem: str = "") -> None:
        await self.comment(ref, text)
        current = await self.call("GET", f"{self.api}/ticket/{ref.id}")
        if isinstance(current, dict) and current.get("Status") in DONE:
            return  # an agent closed it already (that is how watcher may have learnt it)
        await self.call("PUT", f"{self.api}/ticket/{ref.id}", {"Status": "resolved"})

    async def poll(self, cursor: str | None, overlap: float) -> tuple[list[AgentAction], str | None]:
        """``cursor`` is the newest LastUpdated seen (UTC, RFC 3339); the query goes back
        ``overlap`` seconds before it, since RT compares whole seconds and a change in the same
        second as the last poll would otherwise be missed (the actions are idempotent)."""
        if cursor is None:
            since = datetime.now(UTC) - timedelta(days=1)
        else:
            since = datetime.fromisoformat(cursor.replace("Z", "+00:00")) - timedelta(seconds=overlap)
        # ISO 8601 with a Z: RT reads "YYYY-MM-DD HH:MM:SS" in the user's time zone, this in UTC
        query = (f"Queue = {_quote(self.cfg.queue)} AND LastUpdated > "
                 f"{_quote(since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ'))}")
        items = await self.search(query)
        actions: list[AgentAction] = []
        newest = cursor
        for item in items:
            ext = str(item.get("id"))
            updated = str(item.get("LastUpdated") or "")
            if updated and (newest is None or updated > newest):
                newest = updated
            status = str(item.get("Status") or "")
            owner = item.get("Owner") or {}
            owner_id = str(owner.get("id") if isinstance(owner, dict) else owner or "Nobody")
            who = owner_id if owner_id != "Nobody" else "agent"
            if status in ("resolved", "rejected"):
                actions.append(AgentAction(ext, "resolve", f"{self.name}:{who}", status))
            elif owner_id != "Nobody" or status in ("open", "stalled"):
                actions.append(AgentAction(ext, "ack", f"{self.name}:{who}", "ack"))
        return actions, newest
