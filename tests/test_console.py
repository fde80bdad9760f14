"""The agent console's SLA clocks and escaping (pure rendering of ticket documents)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watcher.api import console

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def doc(**over: object) -> dict[str, object]:
    d: dict[str, object] = {"id": "T-000001", "client": "acme", "category": "internet", "status": "open",
                            "planned": False, "title": "Brak internetu <b>Kraków</b>",
                            "entity": {"kind": "site", "id": "acme-krk"}, "opened_at": "2026-11-02T09:00:00Z",
                            "sla": {"react_by": "2026-11-02T11:20:00Z", "escalated_at": None},
                            "affected": ["jan"], "callbacks": [{"person": "jan", "done_at": None, "how": None}],
                            "event_count": 7}
    d.update(over)
    return d


def test_clock_shows_time_left_soon_and_late() -> None:
    assert console.clock(doc(), NOW) == ("ok", "1 h 20 min left")
    soon = doc(sla={"react_by": (NOW + timedelta(minutes=12)).isoformat()})
    assert console.clock(soon, NOW) == ("soon", "12 min left")
    assert console.clock(doc(sla={"react_by": (NOW - timedelta(minutes=90)).isoformat()}), NOW) == \
        ("breached", "late by 1 h 30 min")
    assert console.clock(doc(planned=True), NOW)[0] == "planned"
    assert console.clock(doc(status="acknowledged", acknowledged_at="2026-11-02T09:05:00Z"), NOW)[0] == "ok"


def test_page_escapes_and_offers_the_actions() -> None:
    page = console.render([doc(), doc(id="T-000002", status="acknowledged",
                                      callbacks=[{"person": "ewa", "done_at": None,
                                                  "how": "call owed: notice could not be delivered"}])], NOW)
    assert "<b>Kraków</b>" not in page and "&lt;b&gt;Kraków&lt;/b&gt;" in page
    assert "act('T-000001','ack')" in page and "act('T-000002','ack')" not in page
    assert "act('T-000002','resolve')" in page and "(call owed)" in page
    assert "1 h 20 min left" in page and "2 open" in page


def test_clock_of_an_escalated_ticket_shows_the_teams_deadline_and_misses() -> None:
    esc = {"team": "Serwis IT", "react_by": "2026-11-02T12:00:00Z", "resolve_by": "2026-11-03T12:00:00Z",
           "reacted_at": None, "reaction_missed": False, "resolution_missed": False}
    assert console.clock(doc(escalation=esc), NOW) == ("ok", "with Serwis IT, react by 2026-11-02T12:00:00Z")
    acked = doc(status="acknowledged", escalation=dict(esc, reacted_at="2026-11-02T10:00:00Z"))
    assert console.clock(acked, NOW) == ("ok", "with Serwis IT, resolve by 2026-11-03T12:00:00Z")
    late = doc(escalation=dict(esc, reaction_missed=True, resolution_missed=True))
    assert console.clock(late, NOW) == ("breached", "Serwis IT: reaction and resolution missed")
    assert "escalate('T-000001')" in console.render([doc()], NOW)
