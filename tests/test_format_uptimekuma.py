"""Uptime Kuma's webhook (watcher/collectors/formats/uptimekuma.py): the parser on recorded
payloads, on broken ones and on any JSON at all, and one POST through the running API that
opens a ticket."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_api import Api, app_in
from watcher.collectors.formats import FORMATS, uptimekuma
from watcher.model import Event, EventError

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
RECEIVED = datetime(2026, 11, 2, 8, 16, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse(payload: Any) -> list[Event]:
    return FORMATS["uptimekuma"](payload, RECEIVED)


def test_down_heartbeat_is_a_firing_alert_bound_by_its_tags() -> None:
    (ev,) = parse(load("uptimekuma_down.json"))
    assert ev.source == "uptimekuma" and ev.status == "firing"
    assert ev.labels == {"alertname": "UptimeKumaDown", "severity": "critical", "monitor": "29",
                         "host": "krk-nas01.acme.example", "client": "acme"}  # the valueless tag is left out
    assert ev.starts_at == datetime(2026, 11, 2, 8, 15, 0, 527000, tzinfo=UTC)  # Uptime Kuma's time is UTC
    assert ev.ends_at is None
    assert ev.annotations == {"monitor_name": "NAS Kraków", "summary": "timeout of 48000ms exceeded"}


def test_up_heartbeat_resolves_the_same_alert() -> None:
    (down,) = parse(load("uptimekuma_down.json"))
    (up,) = parse(load("uptimekuma_up.json"))
    assert up.status == "resolved" and up.labels == down.labels
    assert up.ends_at == datetime(2026, 11, 2, 8, 21, 3, 114000, tzinfo=UTC)
    assert up.annotations["summary"] == "[NAS Kraków] [✅ Up] "  # the heartbeat's msg is empty: the payload's


@pytest.mark.parametrize("status", [2, 3])
def test_pending_and_maintenance_give_no_event(status: int) -> None:
    payload = load("uptimekuma_down.json")
    payload["heartbeat"]["status"] = status
    assert parse(payload) == []


def test_the_test_notification_gives_no_event() -> None:
    assert parse({"heartbeat": None, "monitor": None, "msg": "Uptime Kuma Testing"}) == []
    assert parse({"msg": "Uptime Kuma Testing"}) == []


def test_renaming_the_monitor_keeps_its_identity_and_tags_cannot_replace_it() -> None:
    payload = load("uptimekuma_down.json")
    payload["monitor"]["name"] = "NAS (renamed)"
    payload["monitor"]["tags"] += [{"name": "alertname", "value": "X"}, {"name": "severity", "value": "warning"}]
    (ev,) = parse(payload)
    assert ev.labels["alertname"] == "UptimeKumaDown" and ev.labels["monitor"] == "29"
    assert ev.labels["severity"] == "warning"  # a tag may set the severity


def test_rfc3339_time_and_missing_time() -> None:
    payload = load("uptimekuma_down.json")
    payload["heartbeat"]["time"] = "2026-11-02T09:15:00+01:00"
    assert parse(payload)[0].starts_at == datetime(2026, 11, 2, 8, 15, tzinfo=UTC)
    del payload["heartbeat"]["time"]
    assert parse(payload)[0].starts_at is None  # the time of receipt, as for any event without one


@pytest.mark.parametrize(("change", "message"), [
    ({"heartbeat": []}, r"^heartbeat: expected an object"),
    ({"heartbeat": {"status": 5}}, r"^heartbeat\.status: expected 0 \(down\)"),
    ({"heartbeat": {"status": True}}, r"^heartbeat\.status"),
    ({"heartbeat": {"status": 0}, "monitor": None}, r"^monitor: expected an object"),
    ({"heartbeat": {"status": 0}, "monitor": {"name": "x"}}, r"^monitor\.id: expected a number"),
    ({"heartbeat": {"status": 0, "time": "2026-02-30 08:00:00"}, "monitor": {"id": 1}}, r"^heartbeat\.time"),
    ({"heartbeat": {"status": 0}, "monitor": {"id": 1, "tags": {}}}, r"^monitor\.tags: expected a list"),
    ({"heartbeat": {"status": 0}, "monitor": {"id": 1, "tags": [{"name": "a", "value": 1}]}},
     r"^monitor\.tags\[0\]\.value: expected a string"),
])
def test_bad_payloads_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse(change)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_gives_events_or_event_error(payload: Any) -> None:
    try:
        parse(payload)
    except EventError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["status", "time", "msg", "monitorID"]), JSON),
       st.dictionaries(st.sampled_from(["id", "name", "hostname", "url", "tags"]), JSON))
def test_junk_in_every_field_gives_events_or_event_error(beat: dict[str, Any], monitor: dict[str, Any]) -> None:
    """Closer to the real shape than any JSON: the parser's deeper branches see junk too."""
    try:
        events = parse({"heartbeat": {"status": 0, **beat}, "monitor": {"id": 7, **monitor}})
    except EventError as exc:
        assert str(exc)
        return
    for ev in events:
        assert Event.from_dict(ev.to_dict(), RECEIVED).labels == ev.labels


def test_the_parser_is_the_tables() -> None:
    assert FORMATS["uptimekuma"].__doc__ == uptimekuma.parse.__doc__


async def test_a_post_opens_a_ticket_and_the_up_heartbeat_resolves_it(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        api: Api = await app_in(tmp_path, stack)
        status, body = await api.post("/webhooks/uptimekuma", load("uptimekuma_down.json"))
        assert status == 200 and (body["accepted"], body["duplicates"]) == (1, 0), body

        async def ticket() -> Any:
            tickets = (await api.get("/api/v1/tickets"))[1]["tickets"]
            return tickets[0] if tickets else None

        opened = await api.wait_for(ticket, "a ticket for the monitor that went down")
        assert (opened["client"], opened["category"], opened["status"]) == ("acme", "other", "open"), opened
        assert await api.metric("watcher_events_received_total", source="uptimekuma") == 1

        status, body = await api.post("/webhooks/uptimekuma", load("uptimekuma_up.json"))
        assert status == 200 and body["accepted"] == 1, body

        async def resolved() -> Any:
            return (await api.get(f"/api/v1/tickets/{opened['id']}"))[1]["status"] == "resolved"

        await api.wait_for(resolved, "the ticket resolved by the up heartbeat")
