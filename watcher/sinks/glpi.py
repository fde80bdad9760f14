"""GLPI through its legacy REST API (``/apirest.php``, GLPI 9.5 and 10).

A session is opened with ``GET initSession`` (``App-Token`` and ``Authorization: user_token``)
and its ``Session-Token`` is sent with every call; an expired session (401) is opened again.

* create: ``POST /Ticket`` with ``{"input": {name, content, entities_id}}``.
* find: ``GET /search/Ticket`` with a ``contains`` criterion on the title (search option 1).
* comment: ``POST /Ticket/:id/ITILFollowup`` (a private follow-up).
* resolve: a follow-up, then ``PUT /Ticket/:id`` with the solved status (5 by default).
* poll: the search on the last update (option 19) after the cursor, with status (12) and
  the assigned technician (5): a technician acknowledges, solved or closed resolves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.config.sinks import GlpiConfig
from watcher.sinks.base import AgentAction, Draft, ExternalRef, Sink, SinkError

ID, NAME, TECH, STATUS, UPDATED = "2", "1", "5", "12", "19"


class GlpiSink(Sink[GlpiConfig]):
    config_type = GlpiConfig
    _session_token: str | None = None

    @property
    def api(self) -> str:
        return self.cfg.url + "/apirest.php"

    def link(self, ext_id: str) -> str:
        return f"{self.cfg.url}/front/ticket.form.php?id={ext_id}"

    def _app(self) -> dict[str, str]:
        return {"App-Token": self.cfg.app_token} if self.cfg.app_token else {}

    async def _session(self) -> str:
        if self._session_token is None:
            got = await self.call("GET", f"{self.api}/initSession",
                                  headers={**self._app(), "Authorization": f"user_token {self.cfg.user_token}"})
            if not isinstance(got, dict) or not got.get("session_token"):
                raise SinkError("GLPI initSession gave no session_token", retryable=False)
            self._session_token = str(got["session_token"])
        return self._session_token

    async def _api(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                   expect: tuple[int, ...] = (200, 201, 206)) -> Any:
        for attempt in (1, 2):
            token = await self._session()
            try:
                return await self.call(method, f"{self.api}{path}", body, params=params, expect=expect,
                                       headers={**self._app(), "Session-Token": token})
            except SinkError as exc:
                if attempt == 1 and "HTTP 401" in str(exc):
                    self._session_token = None  # the session expired: open a new one once
                    continue
                raise
        raise AssertionError("unreachable")

    async def _search(self, criteria: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        params = {"range": "0-99", "sort": UPDATED, "order": "ASC"}
        for i, (fld, how, value) in enumerate(criteria):
            if i:
                params[f"criteria[{i}][link]"] = "AND"
            params[f"criteria[{i}][field]"] = fld
            params[f"criteria[{i}][searchtype]"] = how
            params[f"criteria[{i}][value]"] = value
        for i, fld in enumerate((ID, NAME, TECH, STATUS, UPDATED)):
            params[f"forcedisplay[{i}]"] = fld
        got = await self._api("GET", "/search/Ticket", params=params)
        return list((got or {}).get("data") or []) if isinstance(got, dict) else []

    async def find(self, ticket_id: str) -> ExternalRef | None:
        tag = f"[watcher {ticket_id}]"
        for row in await self._search([(NAME, "contains", tag)]):
            if tag in str(row.get(NAME, "")):
                return ExternalRef(str(row[ID]), self.link(str(row[ID])))
        return None

    async def create(self, draft: Draft, idem: str) -> ExternalRef:
        got = await self._api("POST", "/Ticket", {"input": {"name": draft.subject, "content": draft.body,
                                                           "entities_id": self.cfg.entity}})
        if not isinstance(got, dict) or not got.get("id"):
            raise SinkError(f"GLPI did not name the new ticket: {str(got)[:200]}", retryable=False)
        return ExternalRef(str(got["id"]), self.link(str(got["id"])))

    async def comment(self, ref: ExternalRef, text: str, idem: str = "") -> None:
        await self._api("POST", f"/Ticket/{ref.id}/ITILFollowup", {"input": {
            "itemtype": "Ticket", "items_id": int(ref.id) if ref.id.isdigit() else ref.id, "content": text,
            "is_private": 1}})

    async def resolve(self, ref: ExternalRef, text: str, idem: str = "") -> None:
        await self.comment(ref, text)
        await self._api("PUT", f"/Ticket/{ref.id}", {"input": {"status": self.cfg.solved_status}})

    async def poll(self, cursor: str | None, overlap: float) -> tuple[list[AgentAction], str | None]:
        """GLPI's dates are local ``YYYY-MM-DD HH:MM:SS`` strings; the cursor keeps one as given."""
        if cursor:
            since = (datetime.strptime(cursor, "%Y-%m-%d %H:%M:%S") - timedelta(seconds=overlap))
        else:
            since = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
        actions: list[AgentAction] = []
        newest = cursor
        rows = await self._search([(NAME, "contains", "[watcher "),
                                   (UPDATED, "morethan", since.strftime("%Y-%m-%d %H:%M:%S"))])
        for row in rows:
            ext, updated = str(row.get(ID)), str(row.get(UPDATED) or "")
            if updated and (newest is None or updated > newest):
                newest = updated
            status = int(row.get(STATUS) or 0)
            tech = row.get(TECH)
            who = f"{self.name}:{tech or 'agent'}"
            if status >= self.cfg.solved_status:
                actions.append(AgentAction(ext, "resolve", who, str(status)))
            elif tech or status >= 2:
                actions.append(AgentAction(ext, "ack", who, "ack"))
        return actions, newest
