"""Zammad through its REST API (``/api/v1``, token access: ``Authorization: Token token=...``).

* create: ``POST /api/v1/tickets`` with title, group, customer and a first article (an
  internal note with the body).
* find: ``GET /api/v1/tickets/search?query=...&expand=true`` for the ``[watcher T-...]`` title.
* comment: ``POST /api/v1/ticket_articles`` (an internal note on the ticket).
* resolve: a note, then ``PUT /api/v1/tickets/:id`` with the configured closed state.
* poll: the same search on ``updated_at:>=<cursor>``; an owner other than ``-`` or the
  state ``open`` acknowledges, the closed state resolves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.config.sinks import ZammadConfig
from watcher.sinks.base import AgentAction, Draft, ExternalRef, Sink, SinkError


class ZammadSink(Sink[ZammadConfig]):
    config_type = ZammadConfig

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token token={self.cfg.token}"}

    def link(self, ext_id: str) -> str:
        return f"{self.cfg.url}/#ticket/zoom/{ext_id}"

    async def _search(self, query: str) -> list[dict[str, Any]]:
        got = await self.call("GET", "/api/v1/tickets/search", params={
            "query": query, "expand": "true", "sort_by": "updated_at", "order_by": "asc", "limit": "100"})
        return [t for t in got if isinstance(t, dict)] if isinstance(got, list) else []

    async def find(self, ticket_id: str) -> ExternalRef | None:
        tag = f"[watcher {ticket_id}]"
        for t in await self._search(f'title:"watcher {ticket_id}"'):
            if tag in str(t.get("title", "")):
                return ExternalRef(str(t["id"]), self.link(str(t["id"])))
        return None

    async def create(self, draft: Draft, idem: str) -> ExternalRef:
        got = await self.call("POST", "/api/v1/tickets", {
            "title": draft.subject, "group": self.cfg.group, "customer": self.cfg.customer,
            "article": {"subject": draft.subject, "body": draft.body, "content_type": "text/plain",
                        "type": "note", "internal": True}})
        if not isinstance(got, dict) or not got.get("id"):
            raise SinkError(f"Zammad did not name the new ticket: {str(got)[:200]}", retryable=False)
        return ExternalRef(str(got["id"]), self.link(str(got["id"])))

    async def comment(self, ref: ExternalRef, text: str, idem: str = "") -> None:
        await self.call("POST", "/api/v1/ticket_articles", {
            "ticket_id": int(ref.id) if ref.id.isdigit() else ref.id, "body": text, "content_type": "text/plain",
            "type": "note", "internal": True})

    async def resolve(self, ref: ExternalRef, text: str, idem: str = "") -> None:
        await self.comment(ref, text)
        await self.call("PUT", f"/api/v1/tickets/{ref.id}", {"state": self.cfg.closed_state})

    async def poll(self, cursor: str | None, overlap: float) -> tuple[list[AgentAction], str | None]:
        since = (datetime.fromisoformat(cursor.replace("Z", "+00:00")) if cursor
                 else datetime.now(UTC) - timedelta(days=1)) - timedelta(seconds=overlap if cursor else 0)
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        actions: list[AgentAction] = []
        newest = cursor
        for t in await self._search(f'title:"watcher" AND updated_at:>={stamp}'):
            ext, updated = str(t.get("id")), str(t.get("updated_at") or "")
            if updated and (newest is None or updated > newest):
                newest = updated
            state, owner = str(t.get("state") or ""), str(t.get("owner") or "-")
            who = f"{self.name}:{owner if owner != '-' else 'agent'}"
            if state == self.cfg.closed_state:
                actions.append(AgentAction(ext, "resolve", who, state))
            elif owner != "-" or state == "open":
                actions.append(AgentAction(ext, "ack", who, "ack"))
        return actions, newest
