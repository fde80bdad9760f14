"""Jira Service Management (Cloud) through its REST APIs, with an API token (basic auth with
the account's e-mail address).

* create: ``POST /rest/servicedeskapi/request`` with serviceDeskId, requestTypeId and
  ``requestFieldValues`` {summary, description}; the answer's issueKey is the id.
* find: ``GET /rest/api/3/search/jql`` with ``summary ~ "watcher T-..."``.
* comment: ``POST /rest/servicedeskapi/request/:key/comment`` (``public: false``, agents only).
* resolve: ``POST /rest/servicedeskapi/request/:key/transition`` with the configured
  transition id and the text as its comment.
* poll: the JQL search on ``updated >= -<minutes since the cursor>m``: an assignee acknowledges, a status in the
  ``done`` category resolves.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from watcher.config.sinks import JiraConfig
from watcher.sinks.base import AgentAction, Draft, ExternalRef, Sink, SinkError


class JiraSink(Sink[JiraConfig]):
    config_type = JiraConfig

    def auth(self) -> aiohttp.BasicAuth | None:
        return aiohttp.BasicAuth(self.cfg.email, self.cfg.api_token)

    def link(self, key: str) -> str:
        return f"{self.cfg.url}/browse/{key}"

    async def _jql(self, jql: str) -> list[dict[str, Any]]:
        got = await self.call("GET", "/rest/api/3/search/jql", params={
            "jql": jql, "fields": "summary,status,assignee,updated", "maxResults": "100"})
        return list((got or {}).get("issues") or []) if isinstance(got, dict) else []

    async def find(self, ticket_id: str) -> ExternalRef | None:
        tag = f"[watcher {ticket_id}]"
        for issue in await self._jql(f'summary ~ "\\"watcher {ticket_id}\\""'):
            if tag in str((issue.get("fields") or {}).get("summary", "")):
                return ExternalRef(str(issue["key"]), self.link(str(issue["key"])))
        return None

    async def create(self, draft: Draft, idem: str) -> ExternalRef:
        got = await self.call("POST", "/rest/servicedeskapi/request", {
            "serviceDeskId": self.cfg.service_desk, "requestTypeId": self.cfg.request_type,
            "requestFieldValues": {"summary": draft.subject, "description": draft.body}})
        if not isinstance(got, dict) or not got.get("issueKey"):
            raise SinkError(f"Jira did not name the new request: {str(got)[:200]}", retryable=False)
        key = str(got["issueKey"])
        return ExternalRef(key, self.link(key))  # the agents' view, not the customer portal's _links.web

    async def comment(self, ref: ExternalRef, text: str, idem: str = "") -> None:
        await self.call("POST", f"/rest/servicedeskapi/request/{ref.id}/comment", {"body": text, "public": False})

    async def resolve(self, ref: ExternalRef, text: str, idem: str = "") -> None:
        await self.call("POST", f"/rest/servicedeskapi/request/{ref.id}/transition",
                        {"id": self.cfg.resolve_transition, "additionalComment": {"body": text}},
                        expect=(200, 204))

    async def poll(self, cursor: str | None, overlap: float) -> tuple[list[AgentAction], str | None]:
        """The cursor is the newest ``updated`` seen.  JQL reads absolute dates in the user's
        time zone, so the query asks for a relative age (``updated >= -Nm``), starting
        ``overlap`` seconds (at least a minute) before the cursor."""
        now = datetime.now(UTC)
        if cursor:
            since = datetime.strptime(cursor, "%Y-%m-%dT%H:%M:%S.%f%z") - timedelta(seconds=max(overlap, 60))
        else:
            since = now - timedelta(days=1)
        minutes = max(1, math.ceil((now - since).total_seconds() / 60))
        actions: list[AgentAction] = []
        newest = cursor
        for issue in await self._jql(f'summary ~ "watcher" AND updated >= -{minutes}m ORDER BY updated ASC'):
            fields = issue.get("fields") or {}
            ext, updated = str(issue.get("key")), str(fields.get("updated") or "")
            if updated and (newest is None or updated > newest):
                newest = updated
            status = fields.get("status") or {}
            category = str(((status.get("statusCategory") or {}).get("key")) or "")
            assignee = fields.get("assignee") or {}
            who = f"{self.name}:{assignee.get('displayName') or 'agent'}"
            if category == "done":
                actions.append(AgentAction(ext, "resolve", who, str(status.get("name") or "done")))
            elif assignee or category == "indeterminate":
                actions.append(AgentAction(ext, "ack", who, "ack"))
        return actions, newest
