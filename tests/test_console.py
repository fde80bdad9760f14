"""The agent console: its pure parts (ordering, SLA clocks, local times, delivery states,
escaping) and its server side (sign-in, sessions, same-origin JSON writes in the agent's
name, the pages) on the real app with a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import markupsafe
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import test_api
from tests.conftest import ROOT
from tests.test_api import Api, Start, event
from watcher.api import console
from watcher.api import console_auth as ca
from watcher.config import load_config
from watcher.store.status import publish_status, read_figures

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # 11:00 in Warsaw
DEMO = load_config(ROOT / "watcher.yaml")


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """The real app on SQLite, with test_api's inventory and the given watcher.yaml keys."""
    stack = AsyncExitStack()

    async def _start(**service: Any) -> Api:
        return await test_api.app_in(tmp_path, stack, **service)

    try:
        yield _start
    finally:
        await stack.aclose()


def doc(**over: object) -> dict[str, Any]:
    d: dict[str, Any] = {"id": "T-000001", "client": "acme", "site": "acme-krk", "category": "internet",
                         "status": "open", "planned": False, "title": "Brak internetu <b>Kraków</b>",
                         "entity": {"kind": "site", "id": "acme-krk"}, "opened_at": "2026-11-02T09:48:00Z",
                         "sla": {"react_by": "2026-11-02T11:20:00Z", "escalated_at": None},
                         "affected": ["jan.kowalski"],
                         "callbacks": [{"person": "jan.kowalski", "added_at": "2026-11-02T09:50:00Z",
                                        "done_at": None, "how": None}],
                         "notifications": [], "timeline": [], "event_count": 7}
    d.update(over)
    return d


def test_clock_counts_down_and_stops_when_acknowledged() -> None:
    assert console.clock(doc(), NOW) == ("ok", "1 h 20 min left")
    soon = doc(sla={"react_by": (NOW + timedelta(minutes=12)).isoformat()})
    assert console.clock(soon, NOW) == ("soon", "12 min left")
    assert console.clock(doc(sla={"react_by": (NOW - timedelta(minutes=90)).isoformat()}), NOW) == \
        ("breached", "late by 1 h 30 min")
    assert console.clock(doc(planned=True), NOW)[0] == "planned"
    assert console.clock(doc(status="acknowledged"), NOW) == ("stopped", "acknowledged")
    assert console.clock(doc(status="acknowledged"), NOW, "pl") == ("stopped", "przyjęte")
    assert console.clock(doc(), NOW, "pl") == ("ok", "1 godz. 20 min zostało")


def test_clock_of_an_escalated_ticket_shows_the_teams_deadline_and_misses() -> None:
    warsaw = ZoneInfo("Europe/Warsaw")
    esc = {"team": "Serwis IT", "react_by": "2026-11-02T12:00:00Z", "resolve_by": "2026-11-03T12:00:00Z",
           "reacted_at": None, "reaction_missed": False, "resolution_missed": False}
    assert console.clock(doc(escalation=esc), NOW, "en", warsaw) == ("ok", "with Serwis IT, react by 13:00")
    acked = doc(status="acknowledged", escalation=dict(esc, reacted_at="2026-11-02T10:00:00Z"))
    assert console.clock(acked, NOW, "en", warsaw) == ("ok", "with Serwis IT, resolve by 03.11 13:00")
    late = doc(escalation=dict(esc, reaction_missed=True, resolution_missed=True))
    assert console.clock(late, NOW) == ("breached", "Serwis IT: reaction and resolution missed")
    assert console.clock(late, NOW, "pl") == ("breached", "Serwis IT: reakcja i rozwiązanie przekroczone")


def test_order_puts_what_needs_action_first() -> None:
    catchall = doc(id="T-1", category="other", affected=[], callbacks=[],
                   sla={"react_by": "2026-11-02T11:20:00Z"})
    office = doc(id="T-2", affected=["a", "b", "c"], sla={"react_by": "2026-11-02T11:20:30Z"})
    acked_urgent = doc(id="T-3", status="acknowledged", sla={"react_by": "2026-11-02T10:01:00Z"})
    urgent = doc(id="T-4", affected=[], callbacks=[], sla={"react_by": "2026-11-02T10:30:00Z"})
    planned = doc(id="T-5", planned=True, sla={"react_by": None})
    ids = [d["id"] for d in console.order([acked_urgent, planned, catchall, office, urgent])]
    # unacknowledged first; least time left first; within the same minute, more people first
    assert ids == ["T-4", "T-2", "T-1", "T-3", "T-5"]


def test_local_times_in_the_clients_zone_with_how_long_ago() -> None:
    warsaw = ZoneInfo("Europe/Warsaw")
    assert console.local_time("2026-11-02T09:48:00Z", warsaw, NOW) == "10:48"
    assert console.local_time("2026-11-01T09:48:00Z", warsaw, NOW) == "01.11 10:48"
    assert console.ago("2026-11-02T09:48:00Z", NOW) == "12 min ago"
    assert console.ago("2026-11-02T09:48:00Z", NOW, "pl") == "12 min temu"
    assert console.ago("2026-11-02T09:59:30Z", NOW) == "just now"
    assert console.ago("2026-11-02T07:30:00Z", NOW) == "2 h 30 min ago"


@pytest.mark.parametrize(("n", "state"), [
    ({"state": "sent", "sent_at": "2026-11-02T09:49:00Z"}, "sent"),
    ({"state": "pending", "attempts": 2, "error": "mailto://x/: refused"}, "retrying"),
    ({"state": "dead", "attempts": 12}, "undelivered"),
    ({"state": "pending"}, "queued"),
])
def test_delivery_state(n: dict[str, Any], state: str) -> None:
    assert console.delivery_state(n) == state


def test_list_shows_names_phones_local_times_and_escapes() -> None:
    page = console.render([doc(notifications=[{"to": "jan.kowalski", "kind": "opened", "state": "dead",
                                               "attempts": 12, "at": "2026-11-02T09:48:05Z"}])],
                          NOW, DEMO, "en", "Anna")
    assert "<b>Kraków</b>" not in page and "&lt;b&gt;Kraków&lt;/b&gt;" in page
    assert "ACME Sp. z o.o." in page and "Biuro Kraków" in page
    assert "Jan Kowalski" in page and "+48 601 100 201" in page
    assert "10:48" in page and "12 min ago" in page and "1 h 20 min left" in page
    assert "1 ✗ failing" in page
    assert "action: 'ack', ticket: 'T-000001'" in page


@given(st.text(alphabet=st.sampled_from(list("<>&\"'ab/= ")), max_size=30))
def test_titles_and_names_are_always_escaped(text: str) -> None:
    tag = f"<img src=x {text}>"
    page = console.render([doc(title=tag)], NOW, DEMO, "pl", tag)
    assert tag not in page
    assert str(markupsafe.escape(tag)) in page


def test_session_cookies_are_signed_and_expire() -> None:
    secret = b"k"
    value = ca.make_cookie(secret, ca.Session("Anna", "pl", 2_000_000_000))
    assert ca.read_cookie(secret, value, now=1_000) == ca.Session("Anna", "pl", 2_000_000_000)
    assert ca.read_cookie(b"other", value, now=1_000) is None
    _body, mac = value.rsplit(".", 1)
    forged = ca.make_cookie(b"x", ca.Session("Mallory", "pl", 2_000_000_000)).rsplit(".", 1)[0] + "." + mac
    assert ca.read_cookie(secret, forged, now=1_000) is None
    assert ca.read_cookie(secret, value, now=2_000_000_001) is None
    assert ca.read_cookie(secret, "garbage", now=1_000) is None


def test_passwords_are_argon2_hashes() -> None:
    digest = ca.hash_password("s3cret")
    assert digest.startswith("$argon2id$") and "s3cret" not in digest
    user = ca.ConsoleUser("anna", digest)
    assert ca.verify_password(user, "s3cret")
    assert not ca.verify_password(user, "S3cret")
    assert not ca.verify_password(None, "s3cret")


# ---------------------------------------------------------------- the server side


async def _console(start: Start) -> Api:
    return await start(console={"users": [{"name": "anna", "display": "Anna Kowalczyk",
                                           "password_hash": ca.hash_password("pw")}], "language": "en"})


def _origin(api: Api) -> dict[str, str]:
    return {"Origin": str(api.client.make_url("/")).rstrip("/")}


async def _sign_in(api: Api) -> None:
    status, body, _ = await api.call("POST", "/console/login", {"name": "Anna", "password": "pw"},
                                     headers=_origin(api))
    assert status == 200 and body["name"] == "Anna Kowalczyk", body


async def test_pages_need_a_signed_in_agent(start: Start) -> None:
    api = await _console(start)
    async with api.client.get("/", allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/console/login"
    status, _body, _ = await api.call("POST", "/console/login", {"name": "anna", "password": "nope"},
                                     headers=_origin(api))
    assert status == 401
    status, _body, _ = await api.call("POST", "/console/act", {"action": "ack", "ticket": "T-000001"},
                                     headers=_origin(api))
    assert status == 401
    await _sign_in(api)
    for path in ("/", "/console/silences", "/console/unbound", "/console/quarantine", "/console/undelivered",
                 "/console/health", "/console/live"):
        async with api.client.get(path, allow_redirects=False) as resp:
            assert resp.status == 200, path
            assert "Anna Kowalczyk" in await resp.text() or path == "/console/live"


async def test_health_and_unbound_pages_show_the_figures_the_leader_published(start: Start) -> None:
    """Whichever worker or replica answers, the pages show the engine's published figures (the
    same as /metrics and /api/v1/stats), not the copy of the engine in this process's memory."""
    api = await _console(start)
    await _sign_in(api)
    status, body = await api.post("/api/v1/events", [event("LinkDown", client="acme", site="acme-krk", ifIndex="1"),
                                                     event("Custom", client="nobody")])
    assert status == 200, body
    await api.wait_for(lambda: _first(api), "the outage ticket")

    async def published() -> Any:
        st = (await asyncio.to_thread(read_figures, api.rt.store)).status
        return st if st is not None and st.cursor >= 2 else None

    st = await api.wait_for(published, "the leader to publish its figures")
    assert (st.open_tickets, st.unbound) == (1, 1)
    # a later leader's figures (a higher epoch, so this process's heartbeats do not overwrite them)
    publish_status(api.rt.store, replace(st, epoch=10**9, cursor=424242, open_tickets=17, unbound=5))
    async with api.client.get("/console/health") as resp:
        page = await resp.text()
    assert "cursor=424242" in page and "=17</p>" in page, page
    assert api.rt.worker.cursor < 424242
    async with api.client.get("/console/unbound") as resp:
        page = await resp.text()
    assert "(5)" in page and "nobody" in page, page


async def test_writes_are_same_origin_json_in_the_agents_name(start: Start) -> None:
    api = await _console(start)
    await _sign_in(api)
    status, body = await api.post("/api/v1/events", [event("LinkDown", client="acme", site="acme-krk", ifIndex="1")])
    assert status == 200, body
    tid = (await api.wait_for(lambda: _first(api), "the outage ticket"))
    act = {"action": "ack", "ticket": tid}
    status, body, _ = await api.call("POST", "/console/act", act, headers={"Origin": "https://evil.example"})
    assert status == 403
    status, body, _ = await api.call("POST", "/console/act", act)  # no Origin, no Sec-Fetch-Site
    assert status == 403
    status, body, _ = await api.call("POST", "/console/act", raw=b"action=ack",
                                     headers={**_origin(api), "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    status, body, _ = await api.call("POST", "/console/act", {**act, "by": "somebody else"}, headers=_origin(api))
    assert status == 200, body
    status, doc = await api.get(f"/api/v1/tickets/{tid}")
    assert doc["status"] == "acknowledged" and doc["acknowledged_by"] == "Anna Kowalczyk"
    status, body, _ = await api.call("POST", "/console/act", {"action": "callback", "ticket": tid,
                                                               "person": "ewa.smith"}, headers=_origin(api))
    assert status == 200, body
    status, body, _ = await api.call("POST", "/console/act", {"action": "planned", "ticket": tid},
                                     headers=_origin(api))
    assert status == 200, body
    status, doc = await api.get(f"/api/v1/tickets/{tid}")
    assert doc["planned"] is True and [c["person"] for c in doc["callbacks"]] == ["ewa.smith"]
    async with api.client.get(f"/console/tickets/{tid}") as resp:
        page = await resp.text()
    assert "Ewa Smith" in page and "by Anna Kowalczyk" in page
    jan = next(r for r in api.rt.store.outbox_rows() if r["recipient"] == "jan.kowalski")
    api.rt.store.mark_failed(jan["id"], "mailto://jan.kowalski@acme.example/: refused", None)  # given up
    async with api.client.get("/console/undelivered") as resp:
        page = await resp.text()
    assert "Jan Kowalski" in page and "refused" in page and tid in page
    async with api.client.get(f"/console/tickets/{tid}") as resp:
        assert "data-delivery=\"undelivered\"" in await resp.text()
    status, body, _ = await api.call("POST", "/console/act", {"action": "resolve", "ticket": tid},
                                     headers=_origin(api))
    assert status == 200, body
    status, doc = await api.get(f"/api/v1/tickets/{tid}")
    assert doc["status"] == "resolved" and doc["resolved_by"] == "Anna Kowalczyk"


async def test_calls_and_escalation_from_the_console(start: Start) -> None:
    api = await _console(start)
    await _sign_in(api)
    status, body = await api.post("/api/v1/events", [event("LinkDown", client="acme", site="acme-krk", ifIndex="1")])
    assert status == 200, body
    tid = await api.wait_for(lambda: _first(api), "the outage ticket")
    status, body = await api.post("/api/v1/people/jan.kowalski/callbacks", {})
    assert status == 200, body
    async with api.client.get("/") as resp:
        page = await resp.text()
    calls = page.split('id="calls"', 1)[1]
    assert "Jan Kowalski" in calls and f"ticket: '{tid}', person: 'jan.kowalski', outcome: 'reached'" in calls
    status, body, _ = await api.call("POST", "/console/act", {"action": "call", "ticket": tid,
                                                               "person": "jan.kowalski", "outcome": "reached"},
                                     headers=_origin(api))
    assert status == 200, body
    status, body, _ = await api.call("POST", "/console/act", {"action": "escalate", "ticket": tid},
                                     headers=_origin(api))
    assert status == 400 and "reason" in body["error"]
    status, body, _ = await api.call("POST", "/console/act", {"action": "escalate", "ticket": tid,
                                                               "reason": "router dead"}, headers=_origin(api))
    assert status == 200, body
    status, doc_ = await api.get(f"/api/v1/tickets/{tid}")
    assert (doc_.get("escalation") or {}).get("team"), doc_
    async with api.client.get(f"/console/tickets/{tid}") as resp:
        assert "with " + doc_["escalation"]["team"] in await resp.text()


async def test_silences_and_maintenance_from_the_console(start: Start) -> None:
    api = await _console(start)
    await _sign_in(api)
    until = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    status, body, _ = await api.call("POST", "/console/act", {"action": "silence", "matchers": "host=~krk-pbx.*",
                                                               "ends_at": until, "comment": "PBX swap"},
                                     headers=_origin(api))
    assert status == 201, body
    assert body["silence"]["matchers"] == {"host": "=~krk-pbx.*"}
    assert body["silence"]["comment"] == "PBX swap (Anna Kowalczyk)"
    status, body, _ = await api.call("POST", "/console/act", {"action": "silence", "matchers": "host=~(",
                                                               "ends_at": until}, headers=_origin(api))
    assert status == 400
    status, body, _ = await api.call("POST", "/console/act", {"action": "maintenance", "site": "acme-krk",
                                                               "starts_at": until, "ends_at": until},
                                     headers=_origin(api))
    assert status == 400 and "after" in body["error"]
    later = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    status, body, _ = await api.call("POST", "/console/act", {"action": "maintenance", "site": "acme-krk",
                                                               "starts_at": until, "ends_at": later,
                                                               "reason": "router"}, headers=_origin(api))
    assert status == 201, body
    async with api.client.get("/console/silences") as resp:
        page = await resp.text()
    assert "=~krk-pbx.*" in page and "PBX swap (Anna Kowalczyk)" in page and "router (Anna Kowalczyk)" in page


async def test_the_agent_chooses_the_language(start: Start) -> None:
    api = await _console(start)
    await _sign_in(api)
    status, _body, _ = await api.call("POST", "/console/act", {"action": "lang", "lang": "pl"},
                                      headers=_origin(api))
    assert status == 200
    async with api.client.get("/") as resp:
        assert "Otwarte zgłoszenia" in await resp.text()


async def _first(api: Api) -> str | None:
    status, body = await api.get("/api/v1/tickets")
    return body["tickets"][0]["id"] if status == 200 and body["tickets"] else None
