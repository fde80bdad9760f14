"""Source-format adapters on recorded payloads, on broken ones, and on garbage."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher.collectors.formats import FORMATS, alertmanager, grafana, parse_events, prometheus, zabbix
from watcher.model import Event, EventError

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
DEPLOY = Path(__file__).parent.parent / "deploy" / "zabbix"
RECEIVED = datetime(2026, 11, 2, 8, 16, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------- registry


def test_registry_names_every_ingest_format() -> None:
    assert set(FORMATS) == {"events", "prometheus", "alertmanager", "grafana", "zabbix", "uptimekuma"}
    assert FORMATS["alertmanager"].__doc__ == alertmanager.parse.__doc__  # wrapped by formats.checked
    assert FORMATS["events"] is parse_events


def test_table_rows_are_consistent() -> None:
    """One row per format: unique names and routes, a parser for each, auth keys and metric
    labels taken from the rows (watcher.yaml's ``auth:`` accepts exactly these plus ``api``)."""
    from watcher.collectors.formats import TABLE, auth_paths, metric_sources
    from watcher.config.service import _AUTH_PATHS

    assert [f.name for f in TABLE] == list(FORMATS)
    paths = [p for f in TABLE for p in f.paths]
    assert len(paths) == len(set(paths)) and all(p.startswith("/") for p in paths)
    assert all(FORMATS[f.name] is f.parse for f in TABLE)
    assert auth_paths() == tuple(f.name for f in TABLE)  # each guarded by the auth: key of its name
    assert set(_AUTH_PATHS) == {*auth_paths(), "api"}
    assert {"api", "prometheus", "alertmanager", "grafana", "zabbix"} <= metric_sources()
    assert [f.name for f in TABLE if f.counts_truncated] == ["alertmanager", "grafana"]


# ---------------------------------------------------------------- events


def test_events_list_parses_all_items() -> None:
    payload = [
        {"labels": {"alertname": "ProbeFailed", "site": "acme-krk"}, "starts_at": "2026-11-02T08:15:00Z"},
        {"labels": {"metric": "share_used_bytes", "share": "acme-projects"}, "value": 1.5e12},
    ]
    events = parse_events(payload, RECEIVED)
    assert [e.alertname for e in events] == ["ProbeFailed", ""]
    assert events[0].observed_at == RECEIVED
    assert events[1].value == 1.5e12


def test_events_error_names_the_item_index() -> None:
    payload = [{"labels": {"a": "b"}}, {"labels": {"a": "b"}}, {"labels": {"alertname": 3}}]
    with pytest.raises(EventError, match=r"^\[2\] labels"):
        parse_events(payload, RECEIVED)


def test_events_requires_a_list() -> None:
    with pytest.raises(EventError, match="expected a JSON list of events, got an object"):
        parse_events({"labels": {"a": "b"}}, RECEIVED)


def test_events_out_of_range_time_is_an_event_error() -> None:
    payload = [{"labels": {"a": "b"}, "starts_at": "0001-01-01T00:00:00+05:00"}]
    with pytest.raises(EventError, match=r"^\[0\] "):
        parse_events(payload, RECEIVED)


# ---------------------------------------------------------------- prometheus


def test_prometheus_push_status_follows_ends_at() -> None:
    firing, resolved = prometheus.parse(load("prometheus_push.json"), RECEIVED)
    assert firing.source == "prometheus"
    assert firing.status == "firing"
    assert firing.ends_at == at("2026-11-02T08:20:00.412Z")
    assert firing.starts_at == at("2026-11-02T08:10:00.412Z")
    assert firing.observed_at == RECEIVED
    assert firing.labels["alertname"] == "InstanceDown"
    assert firing.annotations["generator_url"].startswith("http://prometheus.msp.example:9090/")
    assert resolved.status == "resolved"
    assert resolved.ends_at == at("2026-11-02T08:05:00Z")
    assert resolved.labels["mountpoint"] == "/srv"


def test_prometheus_resend_after_ends_at_is_resolved() -> None:
    later = RECEIVED + timedelta(minutes=10)
    assert [e.status for e in prometheus.parse(load("prometheus_push.json"), later)] == ["resolved"] * 2


def test_prometheus_ends_at_equal_to_receipt_is_resolved() -> None:
    payload = [{"labels": {"alertname": "X"}, "endsAt": "2026-11-02T08:16:00Z"}]
    assert prometheus.parse(payload, RECEIVED)[0].status == "resolved"


def test_prometheus_without_times_is_firing_open_ended() -> None:
    (event,) = prometheus.parse([{"labels": {"alertname": "X"}}], RECEIVED)
    assert (event.status, event.starts_at, event.ends_at) == ("firing", None, None)


def test_prometheus_empty_push_is_no_events() -> None:
    assert prometheus.parse([], RECEIVED) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"labels": {"alertname": "X"}}, r"^payload: expected a list, got an object"),
        ([{"labels": {"alertname": "X"}}, {"annotations": {}}], r"^\[1\]\.labels: required"),
        ([{"labels": {}}], r"^\[0\]\.labels: must not be empty"),
        ([{"labels": {"alertname": 1}}], r"^\[0\]\.labels\.alertname: expected a string, got 1"),
        ([{"labels": {"a": "b"}, "annotations": ["x"]}], r"^\[0\]\.annotations: expected an object"),
        ([{"labels": {"a": "b"}, "startsAt": "yesterday"}], r"^\[0\]\.startsAt: 'yesterday' is not"),
        ([{"labels": {"a": "b"}, "endsAt": 1700000000}], r"^\[0\]\.endsAt: expected an RFC 3339"),
        ([{"labels": {"a": "b"}, "generatorURL": 5}], r"^\[0\]\.generatorURL: expected a string"),
        (["alert"], r"^\[0\]: expected an object, got 'alert'"),
    ],
)
def test_prometheus_rejects(payload: Any, message: str) -> None:
    with pytest.raises(EventError, match=message):
        prometheus.parse(payload, RECEIVED)


# ---------------------------------------------------------------- alertmanager


def test_alertmanager_firing_group() -> None:
    events = alertmanager.parse(load("alertmanager_firing.json"), RECEIVED)
    assert [e.labels["instance"] for e in events] == ["https://vpn.acme.example/", "203.0.113.10:443"]
    for event in events:
        assert event.source == "alertmanager"
        assert event.status == "firing"
        assert event.ends_at is None
        assert event.observed_at == RECEIVED
        assert event.labels["site"] == "acme-krk"
        assert event.annotations["summary"] == "A reachability probe of acme-krk fails"
        assert "truncated_alerts" not in event.annotations
    assert events[0].starts_at == datetime(2026, 11, 2, 8, 15, 0, 123456, tzinfo=UTC)
    assert events[1].starts_at == datetime(2026, 11, 2, 8, 15, 2, 500000, tzinfo=UTC)


def test_alertmanager_resolved_group_matches_firing_identities() -> None:
    firing = alertmanager.parse(load("alertmanager_firing.json"), RECEIVED)
    resolved = alertmanager.parse(load("alertmanager_resolved.json"), RECEIVED)
    assert [e.status for e in resolved] == ["resolved", "resolved"]
    assert [e.fingerprint for e in resolved] == [e.fingerprint for e in firing]
    assert [e.starts_at for e in resolved] == [e.starts_at for e in firing]
    assert resolved[0].ends_at == datetime(2026, 11, 2, 8, 40, 30, 500000, tzinfo=UTC)


def test_alertmanager_firing_ends_at_in_future_is_not_kept() -> None:
    payload = load("alertmanager_firing.json")
    payload["alerts"][0]["endsAt"] = "2026-11-02T08:20:00Z"
    assert alertmanager.parse(payload, RECEIVED)[0].ends_at is None


def test_alertmanager_truncated_alerts_are_reported() -> None:
    payload = load("alertmanager_firing.json")
    payload["truncatedAlerts"] = 7
    group = alertmanager.parse_group(payload, RECEIVED)
    assert group.truncated == 7
    assert group.receiver == "watcher"
    assert group.group_key is not None and "ProbeFailed" in group.group_key
    assert {e.annotations["truncated_alerts"] for e in group.events} == {"7"}


def test_alertmanager_group_of_no_alerts() -> None:
    payload = load("alertmanager_firing.json")
    payload["alerts"] = []
    assert alertmanager.parse(payload, RECEIVED) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": None}, r'^version: required \(expected "4"\)'),
        ({"version": "3"}, r"^version: unsupported version '3'"),
        ({"version": 4}, r"^version: unsupported version 4"),
        ({"alerts": None}, r"^alerts: required"),
        ({"alerts": {"0": {}}}, r"^alerts: expected a list, got an object"),
        ({"truncatedAlerts": -1}, r"^truncatedAlerts: expected a non-negative integer"),
        ({"truncatedAlerts": True}, r"^truncatedAlerts: expected a non-negative integer, got true"),
        ({"status": "pending"}, r"^status: expected 'firing' or 'resolved'"),
        ({"groupLabels": {"a": 1}}, r"^groupLabels\.a: expected a string"),
        ({"receiver": ["x"]}, r"^payload\.receiver: expected a string, got a list"),
    ],
)
def test_alertmanager_rejects_bad_group(change: dict[str, Any], message: str) -> None:
    payload = load("alertmanager_firing.json")
    for key, value in change.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    with pytest.raises(EventError, match=message):
        alertmanager.parse(payload, RECEIVED)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("status", None, r"^alerts\[1\]\.status: required"),
        ("status", "pending", r"^alerts\[1\]\.status: expected 'firing' or 'resolved', got 'pending'"),
        ("labels", None, r"^alerts\[1\]\.labels: required"),
        ("labels", {"alertname": None}, r"^alerts\[1\]\.labels\.alertname: expected a string, got null"),
        ("annotations", "summary", r"^alerts\[1\]\.annotations: expected an object"),
        ("startsAt", None, r"^alerts\[1\]\.startsAt: required"),
        ("startsAt", "0001-01-01T00:00:00Z", r"^alerts\[1\]\.startsAt: required"),
        ("startsAt", "2026-13-01T00:00:00Z", r"^alerts\[1\]\.startsAt: '2026-13-01T00:00:00Z' is not"),
        ("endsAt", {"t": 1}, r"^alerts\[1\]\.endsAt: expected an RFC 3339 time string, got an object"),
        ("endsAt", "9999-12-31T23:59:59-05:00", r"^alerts\[1\]\.endsAt: .* out of range"),
        ("fingerprint", 12, r"^alerts\[1\]\.fingerprint: expected a string"),
    ],
)
def test_alertmanager_rejects_bad_alert(field: str, value: Any, message: str) -> None:
    payload = load("alertmanager_firing.json")
    if value is None:
        payload["alerts"][1].pop(field)
    else:
        payload["alerts"][1][field] = value
    with pytest.raises(EventError, match=message):
        alertmanager.parse(payload, RECEIVED)


def test_alertmanager_long_garbage_is_not_echoed_whole() -> None:
    payload = load("alertmanager_firing.json")
    payload["alerts"][0]["startsAt"] = "x" * 10_000
    with pytest.raises(EventError) as info:
        alertmanager.parse(payload, RECEIVED)
    assert len(str(info.value)) < 200


# ---------------------------------------------------------------- grafana


def test_grafana_firing() -> None:
    server_down, quota = grafana.parse(load("grafana_firing.json"), RECEIVED)
    assert server_down.source == "grafana"
    assert server_down.status == "firing"
    assert server_down.ends_at is None
    assert server_down.starts_at == at("2026-11-02T08:12:00Z")
    assert server_down.labels == {
        "alertname": "MailServerDown",
        "client": "acme",
        "grafana_folder": "Mail",
        "host": "mail.acme.example",
        "severity": "critical",
    }
    assert server_down.value is None
    notes = server_down.annotations
    assert notes["summary"] == "Mail server of acme down"
    assert notes["values"] == "B=0, C=1"
    assert notes["dashboard_url"] == "https://grafana.msp.example/d/mail01"
    assert notes["panel_url"].endswith("viewPanel=4")
    assert notes["silence_url"].startswith("https://grafana.msp.example/alerting/silence/new")
    assert notes["generator_url"].endswith("/f3a9c1d2/view")
    assert notes["value_string"].startswith("[ var='B'")
    assert "dashboard_url" not in quota.annotations
    assert quota.annotations["values"] == "A=93.5"
    assert quota.labels["mailbox"] == "jan.kowalski@acme.example"


def test_grafana_resolved_matches_firing() -> None:
    firing = grafana.parse(load("grafana_firing.json"), RECEIVED)[0]
    (resolved,) = grafana.parse(load("grafana_resolved.json"), RECEIVED)
    assert resolved.status == "resolved"
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.starts_at == firing.starts_at
    assert resolved.ends_at == at("2026-11-02T08:31:00Z")


def test_grafana_truncated_alerts_are_reported() -> None:
    payload = load("grafana_firing.json")
    payload["truncatedAlerts"] = 2
    group = grafana.parse_grafana(payload, RECEIVED)
    assert group.truncated == 2
    assert all(e.annotations["truncated_alerts"] == "2" for e in group.events)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "4"}, r"^version: unsupported version '4' \(expected \"1\"\)"),
        ({"orgId": "1"}, r"^orgId: expected an integer, got '1'"),
        ({"title": 5}, r"^payload\.title: expected a string"),
    ],
)
def test_grafana_rejects_bad_group(change: dict[str, Any], message: str) -> None:
    payload = load("grafana_firing.json")
    payload.update(change)
    with pytest.raises(EventError, match=message):
        grafana.parse(payload, RECEIVED)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("values", {"B": "high"}, r"^alerts\[0\]\.values\.B: expected a number, got 'high'"),
        ("values", [1, 2], r"^alerts\[0\]\.values: expected an object"),
        ("silenceURL", False, r"^alerts\[0\]\.silenceURL: expected a string, got false"),
        ("valueString", {}, r"^alerts\[0\]\.valueString: expected a string"),
    ],
)
def test_grafana_rejects_bad_alert(field: str, value: Any, message: str) -> None:
    payload = load("grafana_firing.json")
    payload["alerts"][0][field] = value
    with pytest.raises(EventError, match=message):
        grafana.parse(payload, RECEIVED)


def test_grafana_refuses_an_alertmanager_payload_and_vice_versa() -> None:
    with pytest.raises(EventError, match="version"):
        grafana.parse(load("alertmanager_firing.json"), RECEIVED)
    with pytest.raises(EventError, match="version"):
        alertmanager.parse(load("grafana_firing.json"), RECEIVED)


# ---------------------------------------------------------------- zabbix


def test_zabbix_problem() -> None:
    (event,) = zabbix.parse(load("zabbix_problem.json"), RECEIVED)
    assert event.source == "zabbix"
    assert event.status == "firing"
    assert event.labels == {
        "alertname": "Interface Gi0/1(WAN): Link down",
        "severity": "critical",
        "host": "krk-rtr-01",
        "client": "acme",
        "site": "acme-krk",
        "component": "network",
        "interface": "Gi0/1(WAN)",
    }
    assert event.starts_at == at("2026-11-02T08:15:00Z")
    assert event.ends_at is None
    assert event.observed_at == RECEIVED
    assert event.annotations == {
        "zabbix_severity": "High",
        "summary": "Interface Gi0/1(WAN): Link down",
        "zabbix_event_id": "4711",
        "zabbix_trigger_id": "23145",
        "description": "This trigger expression works as follows: ...",
        "host_ip": "192.0.2.1",
        "opdata": "Current state: down",
        "generator_url": "https://zabbix.msp.example/tr_events.php?triggerid=23145&eventid=4711",
    }


def test_zabbix_recovery_resolves_the_same_identity() -> None:
    (problem,) = zabbix.parse(load("zabbix_problem.json"), RECEIVED)
    (recovery,) = zabbix.parse(load("zabbix_recovery.json"), RECEIVED)
    assert recovery.status == "resolved"
    assert recovery.fingerprint == problem.fingerprint
    assert recovery.starts_at == problem.starts_at
    assert recovery.ends_at == at("2026-11-02T08:32:10Z")


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("Not classified", "info"),
        ("Information", "info"),
        ("Warning", "warning"),
        ("Average", "warning"),
        ("High", "critical"),
        ("Disaster", "critical"),
        ("disaster", "critical"),
        ("0", "info"),
        ("3", "warning"),
        (5, "critical"),
    ],
)
def test_zabbix_severity_mapping(severity: Any, expected: str) -> None:
    payload = load("zabbix_problem.json")
    payload["trigger_severity"] = severity
    del payload["trigger_nseverity"]
    assert zabbix.parse(payload, RECEIVED)[0].labels["severity"] == expected


def test_zabbix_numeric_severity_wins_over_a_renamed_one() -> None:
    payload = load("zabbix_problem.json")
    payload["trigger_severity"] = "Hoch"
    payload["trigger_nseverity"] = "2"
    (event,) = zabbix.parse(payload, RECEIVED)
    assert event.labels["severity"] == "warning"
    assert event.annotations["zabbix_severity"] == "Warning"


def test_zabbix_tag_overrides_derived_labels() -> None:
    payload = load("zabbix_problem.json")
    payload["event_tags"] = [{"tag": "alertname", "value": "LinkDown"}, {"tag": "ifIndex", "value": "2"}]
    (event,) = zabbix.parse(payload, RECEIVED)
    assert event.labels["alertname"] == "LinkDown"
    assert event.labels["ifIndex"] == "2"
    assert event.annotations["summary"] == "Interface Gi0/1(WAN): Link down"


def test_zabbix_alertname_from_tag_alone() -> None:
    payload = load("zabbix_problem.json")
    del payload["event_name"]
    payload["event_tags"] = "alertname:LinkDown"
    assert zabbix.parse(payload, RECEIVED)[0].labels["alertname"] == "LinkDown"


def test_zabbix_tags_text_repeated_and_valueless() -> None:
    payload = load("zabbix_problem.json")
    payload["event_tags"] = "scope:availability, scope:performance,  critical-service , site:acme-krk,"
    labels = zabbix.parse(payload, RECEIVED)[0].labels
    assert labels["scope"] == "availability,performance"
    assert labels["critical-service"] == ""
    assert labels["site"] == "acme-krk"


def test_zabbix_tags_json_value_may_be_null() -> None:
    payload = load("zabbix_problem.json")
    payload["event_tags"] = [{"tag": "backup", "value": None}]
    assert zabbix.parse(payload, RECEIVED)[0].labels["backup"] == ""


def test_zabbix_update_yields_no_event() -> None:
    payload = load("zabbix_problem.json")
    payload["event_update_status"] = "1"
    assert zabbix.parse(payload, RECEIVED) == []


@pytest.mark.parametrize("clock", [1793607300, "1793607300", "2026-11-02T09:15:00+01:00"])
def test_zabbix_clock_forms(clock: Any) -> None:
    payload = load("zabbix_problem.json")
    payload["event_clock"] = clock
    assert zabbix.parse(payload, RECEIVED)[0].starts_at == at("2026-11-02T08:15:00Z")


def test_zabbix_unexpanded_macros_count_as_absent() -> None:
    payload = load("zabbix_recovery.json")
    payload["recovery_date"] = "{EVENT.RECOVERY.DATE}"
    payload["recovery_time"] = "{EVENT.RECOVERY.TIME}"
    payload["host_ip"] = "{HOST.IP}"
    payload["event_url"] = "{$ZABBIX.URL}"
    (event,) = zabbix.parse(payload, RECEIVED)
    assert event.ends_at is None
    assert "host_ip" not in event.annotations
    assert "generator_url" not in event.annotations


def test_zabbix_offset_timezone_and_integers() -> None:
    payload = load("zabbix_recovery.json")
    payload["timezone"] = "+01:00"
    payload["event_id"] = 4711
    payload["event_value"] = 0
    (event,) = zabbix.parse(payload, RECEIVED)
    assert event.starts_at == at("2026-11-02T08:15:00Z")
    assert event.annotations["zabbix_event_id"] == "4711"


def test_zabbix_without_version_is_accepted() -> None:
    payload = load("zabbix_problem.json")
    del payload["version"]
    assert len(zabbix.parse(payload, RECEIVED)) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "2"}, r"^version: unsupported version '2' \(expected \"1\"\)"),
        ({"event_value": "2"}, r"^event_value: expected 1 \(problem\) or 0 \(recovery\), got '2'"),
        ({"event_value": None}, r"^event_value: required"),
        ({"event_value": True}, r"^event_value: expected a string, got true"),
        ({"event_id": None}, r"^event_id: required"),
        ({"event_id": 1.5}, r"^event_id: expected a string, got 1.5"),
        ({"event_source": "3"}, r"^event_source: only trigger events"),
        ({"event_update_status": "yes"}, r"^event_update_status: expected 0 or 1"),
        ({"event_name": None}, r"^event_name: required \(or a tag named alertname\)"),
        ({"event_name": ["x"]}, r"^event_name: expected a string, got a list"),
        ({"trigger_severity": None, "trigger_nseverity": None}, r"^trigger_severity: required"),
        ({"trigger_severity": "Hoch", "trigger_nseverity": None},
         r"^trigger_severity: unknown severity 'Hoch'"),
        ({"trigger_nseverity": "9"}, r"^trigger_nseverity: expected 0 to 5, got '9'"),
        ({"host_name": {"a": 1}}, r"^host_name: expected a string, got an object"),
        ({"event_tags": 5}, r"^event_tags: expected a list of \{tag, value\}"),
        ({"event_tags": [["client", "acme"]]}, r"^event_tags\[0\]: expected an object, got a list"),
        ({"event_tags": [{"tag": 1, "value": "x"}]}, r"^event_tags\[0\]\.tag: expected a string, got 1"),
        ({"event_tags": [{"tag": "a", "value": 1}]}, r"^event_tags\[0\]\.value: expected a string, got 1"),
        ({"event_tags": ":acme"}, r"^event_tags: a tag has an empty name"),
        ({"event_clock": None}, r"^event_clock: required \(or event_date and event_time\)"),
        ({"event_clock": "soon"}, r"^event_clock: 'soon' is not an RFC 3339 time"),
        ({"event_clock": False}, r"^event_clock: expected an RFC 3339 time or unix seconds, got false"),
        ({"event_clock": 10**30}, r"^event_clock: .* is not a valid unix time"),
        ({"event_clock": "9" * 400}, r"^event_clock: .* is not a valid unix time"),
        ({"event_clock": ["x"]}, r"^event_clock: expected an RFC 3339 time string, got a list"),
    ],
)
def test_zabbix_rejects(change: dict[str, Any], message: str) -> None:
    payload = load("zabbix_problem.json")
    for key, value in change.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    with pytest.raises(EventError, match=message):
        zabbix.parse(payload, RECEIVED)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event_time": None}, r"^event_date, event_time: expected both"),
        ({"event_date": "02.11.2026"}, r"^event_date, event_time: '02.11.2026' '09:15:00' is not a date"),
        ({"event_time": "25:00:00"}, r"^event_date, event_time: .* is not a date"),
        ({"timezone": "Mars/Olympus"}, r"^timezone: unknown zone 'Mars/Olympus'"),
        ({"timezone": "../../etc/passwd"}, r"^timezone: unknown zone"),
        ({"timezone": "+25:00"}, r"^timezone: offset '\+25:00' is out of range"),
        ({"timezone": 2}, r"^timezone: expected an IANA zone name or \+HH:MM, got 2"),
        ({"event_date": "0001.01.01", "event_time": "00:00:00", "timezone": "+05:00"}, r"out of range"),
    ],
)
def test_zabbix_rejects_bad_local_times(change: dict[str, Any], message: str) -> None:
    payload = load("zabbix_recovery.json")
    for key, value in change.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    with pytest.raises(EventError, match=message):
        zabbix.parse(payload, RECEIVED)


# ---------------------------------------------------------------- robustness

GARBAGE: list[Any] = [
    None, True, False, 0, -1, 1.5, float("nan"), float("inf"), 10**40, "", " ", "x", "0", "1",
    "{EVENT.ID}", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-11-02T08:15:00Z",
    [], [None], [[]], [{}], {}, {"": ""}, {"a": None}, {"a": {"b": []}}, {"tag": 1, "value": []},
]

RECORDED: dict[str, list[Any]] = {
    "events": [
        [{"labels": {"alertname": "X", "site": "s"}, "annotations": {"a": "b"}, "status": "resolved",
          "starts_at": "2026-11-02T08:00:00Z", "ends_at": "2026-11-02T08:05:00Z", "value": None}],
    ],
    "prometheus": ["prometheus_push.json"],
    "alertmanager": ["alertmanager_firing.json", "alertmanager_resolved.json"],
    "grafana": ["grafana_firing.json", "grafana_resolved.json"],
    "zabbix": ["zabbix_problem.json", "zabbix_recovery.json"],
    "uptimekuma": ["uptimekuma_down.json", "uptimekuma_up.json"],
}


def recorded(name: str) -> Iterator[Any]:
    for item in RECORDED[name]:
        yield load(item) if isinstance(item, str) else copy.deepcopy(item)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in a JSON document, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key in value:
            yield from paths(value[key], (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return copy.deepcopy(new)
    result = copy.deepcopy(document)
    node = result
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = copy.deepcopy(new)
    return result


def outcome(name: str, payload: Any) -> list[Event] | None:
    """The adapter's events, or None for an EventError; anything else fails the test."""
    try:
        events = FORMATS[name](payload, RECEIVED)
    except EventError as exc:
        assert str(exc)
        return None
    assert isinstance(events, list)
    for event in events:
        assert isinstance(event, Event)
        again = Event.from_dict(event.to_dict(), RECEIVED)
        assert again.labels == event.labels and again.status == event.status
    return events


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_recorded_payloads_parse(name: str) -> None:
    for payload in recorded(name):
        events = outcome(name, payload)
        assert events, f"{name}: a recorded payload gave no events"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_any_json_value_gives_events_or_event_error(name: str) -> None:
    for payload in GARBAGE:
        outcome(name, payload)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_field_replaced_by_garbage(name: str) -> None:
    """Each position of each recorded payload, replaced by each garbage value."""
    for payload in recorded(name):
        for path in paths(payload):
            for garbage in GARBAGE:
                outcome(name, replaced(payload, path, garbage))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_field_removed(name: str) -> None:
    for payload in recorded(name):
        for path in paths(payload):
            if not path:
                continue
            document = copy.deepcopy(payload)
            node = document
            for step in path[:-1]:
                node = node[step]
            del node[path[-1]]
            outcome(name, document)


# ---------------------------------------------------------------- the Zabbix media type


def media_type() -> dict[str, Any]:
    export = yaml.safe_load((DEPLOY / "watcher_media_type.yaml").read_text())
    (media,) = export["zabbix_export"]["media_types"]
    assert isinstance(media, dict)
    return media


def test_media_type_export_is_a_webhook_with_the_documented_parameters() -> None:
    media = media_type()
    assert media["type"] == "WEBHOOK"
    names = {p["name"] for p in media["parameters"]}
    assert {"watcher_url", "watcher_token", "event_id", "event_value", "event_name", "event_tags_json",
            "event_clock", "recovery_clock", "event_nseverity", "event_severity", "host_name"} <= names
    assert "/webhooks/zabbix" in next(p["value"] for p in media["parameters"] if p["name"] == "watcher_url")


NODE = shutil.which("node")

HARNESS = """
var posted = [];
function HttpRequest() { this.headers = []; }
HttpRequest.prototype.addHeader = function (h) { this.headers.push(h); };
HttpRequest.prototype.setProxy = function (p) { this.proxy = p; };
HttpRequest.prototype.post = function (url, body) {
    posted.push({url: url, body: body, headers: this.headers, proxy: this.proxy || ''});
    return '{"accepted": 1}';
};
HttpRequest.prototype.getStatus = function () { return STATUS; };
var Zabbix = { log: function () {} };
var result = null, error = null;
try { result = (function (value) { SCRIPT
})(VALUE); } catch (e) { error = String(e); }
console.log(JSON.stringify({result: result, error: error, posted: posted}));
"""


def run_media_type(tmp_path: Path, macros: dict[str, str], status: int = 202) -> dict[str, Any]:
    """Run the media type's script under node, with Zabbix' HttpRequest faked."""
    assert NODE is not None
    media = media_type()
    params = {p["name"]: p["value"] for p in media["parameters"]}
    params["watcher_token"] = "t0ken"
    for name, value in params.items():
        params[name] = macros.get(value, value)
    source = (HARNESS.replace("STATUS", str(status)).replace("VALUE", json.dumps(json.dumps(params)))
              .replace("SCRIPT", media["script"]))
    script = tmp_path / "media.js"
    script.write_text(source)
    done = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=30, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


PROBLEM_MACROS = {
    "{EVENT.TIMESTAMP}": "1793607300",
    "{EVENT.ID}": "4711",
    "{EVENT.NAME}": "Interface Gi0/1(WAN): Link down",
    "{EVENT.NSEVERITY}": "4",
    "{EVENT.OPDATA}": "Current state: down",
    "{EVENT.SEVERITY}": "High",
    "{EVENT.SOURCE}": "0",
    "{EVENT.TAGS}": "client:acme, site:acme-krk",
    "{EVENT.TAGSJSON}": '[{"tag":"client","value":"acme"},{"tag":"site","value":"acme-krk"}]',
    "{EVENT.UPDATE.STATUS}": "0",
    "{EVENT.VALUE}": "1",
    "{HOST.IP}": "192.0.2.1",
    "{HOST.NAME}": "krk-rtr-01",
    "{TRIGGER.DESCRIPTION}": "",
    "{TRIGGER.ID}": "23145",
    "{$ZABBIX.URL}": "https://zabbix.msp.example",
}


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_media_type_script_posts_what_the_adapter_reads(tmp_path: Path) -> None:
    run = run_media_type(tmp_path, PROBLEM_MACROS)
    assert run["error"] is None and run["result"] == "OK"
    (post,) = run["posted"]
    assert post["url"] == "https://watcher.example.com/webhooks/zabbix"
    assert "Authorization: Bearer t0ken" in post["headers"]
    assert "Content-Type: application/json" in post["headers"]
    (problem,) = zabbix.parse(json.loads(post["body"]), RECEIVED)
    assert problem.status == "firing"
    assert problem.labels == {"alertname": "Interface Gi0/1(WAN): Link down", "severity": "critical",
                              "host": "krk-rtr-01", "client": "acme", "site": "acme-krk"}
    assert problem.starts_at == at("2026-11-02T08:15:00Z")
    assert problem.annotations["generator_url"] == (
        "https://zabbix.msp.example/tr_events.php?triggerid=23145&eventid=4711")

    recovery_macros = {**PROBLEM_MACROS, "{EVENT.VALUE}": "0", "{EVENT.RECOVERY.TIMESTAMP}": "1793608330"}
    run = run_media_type(tmp_path, recovery_macros)
    (recovery,) = zabbix.parse(json.loads(run["posted"][0]["body"]), RECEIVED)
    assert recovery.status == "resolved"
    assert recovery.fingerprint == problem.fingerprint
    assert recovery.ends_at == at("2026-11-02T08:32:10Z")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_media_type_script_falls_back_to_tag_text(tmp_path: Path) -> None:
    macros = {k: v for k, v in PROBLEM_MACROS.items() if k != "{EVENT.TAGSJSON}"}
    run = run_media_type(tmp_path, macros)
    (event,) = zabbix.parse(json.loads(run["posted"][0]["body"]), RECEIVED)
    assert event.labels["site"] == "acme-krk"


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_media_type_script_skips_updates_and_reports_failures(tmp_path: Path) -> None:
    run = run_media_type(tmp_path, {**PROBLEM_MACROS, "{EVENT.UPDATE.STATUS}": "1"})
    assert run["posted"] == [] and run["error"] is None
    run = run_media_type(tmp_path, PROBLEM_MACROS, status=400)
    assert run["error"] is not None and "HTTP 400" in run["error"]
