"""The HTTP API as a sender or an agent sees it: the real app (``build_app``: store, engine
worker, ingestor) served in-process by aiohttp's test server on a temporary SQLite database,
with delivery switched off and no SNMP listener.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT
from tests.proc import WatcherProcess
from tests.servers import free_port
from tests.test_e2e import fast_rules
from watcher.api.auth import sign
from watcher.app import build_app
from watcher.config import load_config
from watcher.runtime import RUNTIME, Runtime

FIXTURES = ROOT / "tests" / "fixtures" / "formats"
TOKEN = "tok-api-0f3c9d1e7a"
SECRET = "hmac-api-secret-5b2e"

INVENTORY = {"clients": [
    {"id": "acme", "name": "ACME Sp. z o.o.", "sla": "gold", "language": "pl", "timezone": "Europe/Warsaw",
     "business_hours": "Mon-Fri 08:00-17:00", "admins": ["mailto://admin@msp.example"],
     "sites": [{"id": "acme-krk", "name": "Biuro Kraków",
                "office_contact": {"name": "Recepcja", "email": "recepcja@acme.example"},
                "probes": [{"type": "http", "target": "https://vpn.acme.example/"},
                           {"type": "tcp", "target": "203.0.113.10:443"}],
                "match": {"host": "krk-.*"}}],
     "people": [
         {"id": "jan.kowalski", "name": "Jan Kowalski", "site": "acme-krk", "remote": True,
          "notify": ["mailto://jan.kowalski@acme.example"]},
         {"id": "ewa.smith", "name": "Ewa Smith", "site": "acme-krk", "remote": True, "language": "en",
          "notify": ["mailto://ewa.smith@acme.example"]},
         {"id": "olek.biuro", "name": "Olek", "site": "acme-krk", "remote": False,
          "notify": ["mailto://olek@acme.example"]}]},
    {"id": "beta", "name": "Beta Ltd", "language": "en",
     "sites": [{"id": "beta-waw", "name": "Warsaw office"}]},
]}


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    app: web.Application

    @property
    def rt(self) -> Runtime:
        return self.app[RUNTIME]

    async def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        async with self.client.request(method, path, data=data,
                                       headers={"Content-Type": "application/json", **(headers or {})}) as resp:
            text = await resp.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return resp.status, parsed, dict(resp.headers)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, parsed, _ = await self.call("POST", path, body, **kw)
        return status, parsed

    async def get(self, path: str) -> tuple[int, Any]:
        status, parsed, _ = await self.call("GET", path)
        return status, parsed

    async def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample of /metrics, None when there is no such sample."""
        status, text = await self.get("/metrics")
        assert status == 200
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return None

    def stored(self) -> int:
        """How many rows the inbox holds."""
        return self.rt.store.inbox_max()

    async def wait_for(self, predicate: Callable[[], Awaitable[Any]], what: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = await predicate()
            if last:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


Start = Callable[..., Awaitable[Api]]


async def app_in(folder: Path, stack: AsyncExitStack, **service: Any) -> Api:
    """The real app on SQLite in ``folder``: INVENTORY, the shipped rules with short holds,
    and a watcher.yaml with the given extra keys; closed with ``stack``."""
    (folder / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY, allow_unicode=True))
    fast_rules(folder)
    doc = {"rules": "rules.yaml", "inventory": "inventory.yaml", "database": "sqlite:///watcher.db",
           "secret_key": "api-test-secret-key", "engine_tick": "0.1s", "notify": {"enabled": False},
           "snmp": {"listen": "off"}, **service}
    (folder / "watcher.yaml").write_text(yaml.safe_dump(doc))
    config = load_config(folder / "watcher.yaml")
    if "database" not in service:
        assert config.service.db_url == f"sqlite:///{folder / 'watcher.db'}"
    app = build_app(config)
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    stack.push_async_callback(client.close)
    return Api(client, app)


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Start the app with a watcher.yaml of ``rules``, ``inventory`` and the given extra keys."""
    stack = AsyncExitStack()
    count = 0

    async def _start(**service: Any) -> Api:
        nonlocal count
        count += 1
        folder = tmp_path / f"app{count}"
        folder.mkdir()
        return await app_in(folder, stack, **service)

    try:
        yield _start
    finally:
        await stack.aclose()


@pytest.fixture
async def api(start: Start) -> Api:
    return await start()


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def event(alertname: str = "Custom", **labels: str) -> dict[str, Any]:
    return {"source": "test", "labels": {"alertname": alertname, "client": "acme", **labels},
            "starts_at": "2026-11-02T08:15:00Z"}


def probe(instance: str, start: datetime, status: str = "firing") -> dict[str, Any]:
    return {"source": "probe", "status": status,
            "labels": {"alertname": "ProbeFailed", "client": "acme", "site": "acme-krk", "instance": instance},
            "starts_at": iso(start), "ends_at": iso(start + timedelta(seconds=30)) if status == "resolved" else None}


# ---------------------------------------------------------------- POST /api/v1/events


async def test_events_accepts_a_list_and_counts_duplicates(api: Api) -> None:
    status, body = await api.post("/api/v1/events", [event(host="a"), event(host="b")])
    assert status == 200, body
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    status, body = await api.post("/api/v1/events", [event(host="b"), event(host="c"), event(host="c")])
    assert status == 200 and (body["accepted"], body["duplicates"]) == (1, 2), body
    assert api.stored() == 3
    # a sender-chosen source is counted as "other": one metric series per sender would be unbounded
    assert await api.metric("watcher_events_received_total", source="other") == 3
    assert await api.metric("watcher_events_duplicate_total", source="other") == 2
    # a new starts_at is a new occurrence of the same alert
    again = dict(event(host="a"), starts_at="2026-11-02T09:00:00Z")
    assert (await api.post("/api/v1/events", [again]))[1]["accepted"] == 1
    status, body = await api.post("/api/v1/events", [])
    assert status == 200 and (body["accepted"], body["duplicates"]) == (0, 0)


async def test_accepted_events_are_stored_as_sent(api: Api) -> None:
    ev = dict(event(host="krk-fs01"), annotations={"summary": "Zażółć"}, observed_at="2026-11-02T08:15:04Z")
    assert (await api.post("/api/v1/events", [ev]))[0] == 200
    ((_seq, kind, _at, payload),) = api.rt.store.read_inbox(0, 10)
    stored = json.loads(payload)
    assert kind == "event"
    assert stored["labels"] == {"alertname": "Custom", "client": "acme", "host": "krk-fs01"}
    assert stored["annotations"] == {"summary": "Zażółć"}
    assert (stored["status"], stored["starts_at"], stored["observed_at"]) == (
        "firing", "2026-11-02T08:15:00Z", "2026-11-02T08:15:04Z")


BAD_BODIES = [
    pytest.param(b"this is not json", "not valid JSON", id="invalid-json"),
    pytest.param(b'[{"labels": {"alertname": "Custom", "client": "ac', "not valid JSON", id="truncated-json"),
    pytest.param(b"", "not valid JSON", id="empty"),
    pytest.param(b"\xff\xfe[]", "not valid JSON", id="not-utf8"),
    pytest.param(b'{"labels": {"alertname": "Custom"}}', "expected a JSON list", id="not-a-list"),
    pytest.param(b'"events"', "expected a JSON list", id="a-string"),
    pytest.param(b'[{"labels": {"alertname": 5}}]', "labels.alertname", id="label-not-a-string"),
    pytest.param(b'[{"labels": {"alertname": "X"}, "value": "12"}]', "value", id="value-not-a-number"),
    pytest.param(b'[{"labels": {"alertname": "X"}, "status": "burning"}]', "status", id="bad-status"),
    pytest.param(b'[{"labels": {"alertname": "X"}, "starts_at": "yesterday"}]', "starts_at", id="bad-time"),
    pytest.param(b'[{"labels": {}}]', "labels", id="no-labels"),
    pytest.param(b'[{"labels": {"alertname": "X"}, "colour": "red"}]', "unknown field(s): colour", id="unknown"),
    pytest.param(b'[["alertname", "X"]]', "[0]", id="item-not-an-object"),
    pytest.param(b'[{"labels": {"alertname": "Good"}}, {"labels": {"alertname": "Bad"}, "colour": "red"}]',
                 "[1] unknown field(s): colour", id="second-item-bad"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_BODIES)
async def test_bad_events_are_400_and_store_nothing(api: Api, raw: bytes, message: str) -> None:
    status, body = await api.post("/api/v1/events", raw=raw)
    assert status == 400, body
    assert body["status"] == "error" and message in body["error"], body
    assert api.stored() == 0
    assert await api.metric("watcher_events_received_total") is None  # not a single event counted
    assert (await api.metric("watcher_ingest_rejected_total", path="events") or 0) == 1


async def test_a_control_character_in_source_is_refused_on_every_backend(db_url: str, start: Start) -> None:
    """A sender's bad field is a 400, never a 503 'store unavailable, retry later' (which makes a sender
    such as Alertmanager retry the same payload for ever), and the answer does not depend on the backend."""
    api = await start(database=db_url)
    status, body = await api.post("/api/v1/events", [dict(event(host="a"), source="probe\u0000x")])
    assert status == 400 and "source" in body["error"], (status, body)
    assert api.stored() == 0
    status, body = await api.post("/api/v1/events", [event(host="a")])
    assert status == 200 and body["accepted"] == 1


async def test_body_over_max_body_bytes_is_413(start: Start) -> None:
    api = await start(max_body_bytes=2048)
    big = [event(host=f"h{i:03d}") for i in range(40)]
    raw = json.dumps(big).encode()
    assert len(raw) > 2048
    status, body = await api.post("/api/v1/events", raw=raw)
    assert status == 413, body
    assert "2048" in body["error"]
    assert api.stored() == 0
    small = json.dumps(big[:5]).encode()
    assert len(small) < 2048
    status, body = await api.post("/api/v1/events", raw=small)
    assert status == 200 and body["accepted"] == 5


async def test_chunked_body_over_max_body_bytes_is_413(start: Start) -> None:
    """Without a Content-Length the limit must hold too (a chunked body just over it)."""
    api = await start(max_body_bytes=2048)
    items = []
    while len(json.dumps(items)) < 2048 + 300:
        items.append(event(host=f"h{len(items):03d}"))
    raw = json.dumps(items).encode()
    assert 2048 < len(raw) < 2048 + 1024

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 500):
            yield raw[i:i + 500]

    async with api.client.post("/api/v1/events", data=chunks(),
                               headers={"Content-Type": "application/json"}) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        status = resp.status
    assert status == 413
    assert api.stored() == 0


# ---------------------------------------------------------------- authentication


async def test_bearer_auth(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = await start(auth={"events": {"kind": "bearer", "token": TOKEN}})
    body = [event(host="a")]
    seen: list[str] = []

    status, resp, headers = await api.call("POST", "/api/v1/events", body)
    seen.append(json.dumps(resp) + json.dumps(headers))
    assert status == 401, resp
    assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    status, resp, headers = await api.call("POST", "/api/v1/events", body,
                                           headers={"Authorization": f"Bearer {TOKEN}x"})
    seen.append(json.dumps(resp) + json.dumps(headers))
    assert status == 403, resp
    status, resp, headers = await api.call("POST", "/api/v1/events", body, headers={"Authorization": f"Basic {TOKEN}"})
    seen.append(json.dumps(resp) + json.dumps(headers))
    assert status == 401, resp
    assert api.stored() == 0
    status, resp, headers = await api.call("POST", "/api/v1/events", body,
                                           headers={"Authorization": f"Bearer {TOKEN}"})
    seen.append(json.dumps(resp) + json.dumps(headers))
    assert status == 200 and resp["accepted"] == 1, resp
    assert await api.metric("watcher_auth_failures_total", path="events") == 3
    for path in ("/metrics", "/healthz", "/api/v2/status", "/api/v1/tickets", "/api/v1/outbox", "/"):
        status, resp, headers = await api.call("GET", path)
        seen.append(json.dumps(resp) + json.dumps(headers))
    for text in seen:
        assert TOKEN not in text
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(api.rt.config.service) and TOKEN not in repr(api.rt.auth)


def test_bearer_token_stays_out_of_the_service_log(tmp_path: Path) -> None:
    """The real service (a subprocess, its log captured): wrong and right tokens are never logged."""
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY, allow_unicode=True))
    fast_rules(tmp_path)
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text(yaml.safe_dump({"rules": "rules.yaml", "inventory": "inventory.yaml",
                                   "notify": {"enabled": False}, "snmp": {"listen": "off"},
                                   "auth": {"events": {"kind": "bearer", "token": TOKEN}}}))
    w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
    w.start()
    try:
        body = [event(host="a")]
        answers = [w.request("POST", "/api/v1/events", body),
                   w.request("POST", "/api/v1/events", body, {"Authorization": f"Bearer {TOKEN}-wrong"}),
                   w.request("POST", "/api/v1/events", body, {"Authorization": f"Bearer {TOKEN}"})]
        assert [a[0] for a in answers] == [401, 403, 200], answers
        status, metrics = w.request("GET", "/metrics")
        assert status == 200 and 'watcher_auth_failures_total{path="events"} 2.0' in metrics
        assert all(TOKEN not in json.dumps(a[1]) for a in answers)
    finally:
        assert w.stop() == 0
    log = (tmp_path / "watcher.log").read_text()
    assert "watcher listening on" in log and TOKEN not in log


async def test_hmac_auth(start: Start) -> None:
    api = await start(auth={"events": {"kind": "hmac", "secret": SECRET}})
    raw = json.dumps([event(host="signed")]).encode()
    status, resp = await api.post("/api/v1/events", raw=raw, headers=sign(SECRET, raw, time.time()))
    assert status == 200 and resp["accepted"] == 1, resp
    # a replay of a body signed ten minutes ago is refused, even with a correct signature
    old = json.dumps([event(host="replayed")]).encode()
    status, resp, headers = await api.call("POST", "/api/v1/events", raw=old,
                                           headers=sign(SECRET, old, time.time() - 600))
    assert status == 401, resp
    assert "window" in resp["error"] and headers.get("WWW-Authenticate")
    # a body changed after signing is refused
    status, resp = await api.post("/api/v1/events", raw=old, headers=sign(SECRET, raw, time.time()))
    assert status == 403, resp
    # signed with another secret
    status, resp = await api.post("/api/v1/events", raw=old, headers=sign("other", old, time.time()))
    assert status == 403, resp
    status, resp = await api.post("/api/v1/events", raw=old)
    assert status == 401, resp
    assert api.stored() == 1
    assert await api.metric("watcher_auth_failures_total", path="events") == 4
    assert all(SECRET not in json.dumps(r) for r in (resp,))


# ---------------------------------------------------------------- other ingest paths


async def test_prometheus_push(api: Api) -> None:
    raw = (FIXTURES / "prometheus_push.json").read_bytes()
    status, body = await api.post("/api/v2/alerts", raw=raw)
    assert status == 200 and (body["accepted"], body["duplicates"]) == (2, 0), body
    status, body = await api.post("/api/v2/alerts", raw=raw)  # the periodic re-send
    assert status == 200 and (body["accepted"], body["duplicates"]) == (0, 2), body
    stored = [json.loads(p) for *_, p in api.rt.store.read_inbox(0, 10)]
    assert {e["labels"]["alertname"] for e in stored} == {"InstanceDown", "HostOutOfDiskSpace"}
    assert {e["source"] for e in stored} == {"prometheus"}
    assert await api.metric("watcher_events_received_total", source="prometheus") == 2
    status, body = await api.post("/api/v2/alerts", {"labels": {"alertname": "X"}})
    assert status == 400 and "expected a list" in body["error"], body


async def test_alertmanager_webhook(api: Api) -> None:
    raw = (FIXTURES / "alertmanager_firing.json").read_bytes()
    status, body = await api.post("/webhooks/alertmanager", raw=raw)
    assert status == 200 and (body["accepted"], body["duplicates"]) == (2, 0), body
    stored = [json.loads(p) for *_, p in api.rt.store.read_inbox(0, 10)]
    assert [(e["labels"]["instance"], e["status"]) for e in stored] == [
        ("https://vpn.acme.example/", "firing"), ("203.0.113.10:443", "firing")]
    assert stored[1]["starts_at"].startswith("2026-11-02T08:15:02")  # +01:00 read as UTC
    raw = (FIXTURES / "alertmanager_resolved.json").read_bytes()
    status, body = await api.post("/webhooks/alertmanager", raw=raw)
    assert status == 200 and body["accepted"] >= 1, body
    status, body = await api.post("/webhooks/alertmanager", {"version": "4", "alerts": "none"})
    assert status == 400 and "alerts" in body["error"], body


async def test_alertmanager_truncated_alerts_are_counted(api: Api) -> None:
    payload = json.loads((FIXTURES / "alertmanager_firing.json").read_bytes())
    payload["truncatedAlerts"] = 3
    status, body = await api.post("/webhooks/alertmanager", payload)
    assert status == 200, body
    assert await api.metric("watcher_truncated_alerts_total", path="alertmanager") == 3
    # a normalized event cannot fake it, whatever its annotations say
    event = {"labels": {"alertname": "X"}, "annotations": {"truncated_alerts": "99"}}
    assert (await api.post("/api/v1/events", [event]))[0] == 200
    assert await api.metric("watcher_truncated_alerts_total", path="events") in (None, 0)


async def test_unknown_webhook_is_404(api: Api) -> None:
    status, body = await api.post("/webhooks/unknown", raw=(FIXTURES / "alertmanager_firing.json").read_bytes())
    assert status == 404 and "unknown" in body["error"], body
    assert api.stored() == 0


# ---------------------------------------------------------------- reads and their validation


@pytest.mark.parametrize(("query", "message"), [
    ("status=closed", "status"),
    ("since=yesterday", "since"),
    ("since=2026-13-01T00:00:00Z", "since"),
    ("limit=ten", "limit"),
])
async def test_ticket_list_rejects_bad_filters(api: Api, query: str, message: str) -> None:
    status, body = await api.get(f"/api/v1/tickets?{query}")
    assert status == 400 and message in body["error"], body


@pytest.mark.parametrize("query", ["limit=-1", "offset=99999999999999999999", "limit=0&offset=-3"])
async def test_ticket_list_paging_never_fails_the_server(db_url: str, start: Start, query: str,
                                                         request: pytest.FixtureRequest) -> None:
    """Odd paging is the caller's mistake (400) or is clamped (200), on either backend; never a 500."""
    api = await start(database=db_url)
    status, body = await api.get(f"/api/v1/tickets?{query}")
    assert status in (200, 400), (status, body)


async def test_unknown_ticket_is_404(api: Api) -> None:
    status, body = await api.get("/api/v1/tickets/NOPE")
    assert status == 404 and "NOPE" in body["error"], body
    for action, payload in (("ack", {}), ("resolve", {}), ("callbacks", {"person": "jan.kowalski"})):
        status, body = await api.post(f"/api/v1/tickets/NOPE/{action}", payload)
        assert status == 404, (action, body)


async def test_health_and_status_endpoints(api: Api) -> None:
    status, body = await api.get("/healthz")
    assert status == 200 and body["status"] == "ok" and body["open_tickets"] == 0, body
    for path in ("/-/healthy", "/-/ready"):
        status, body = await api.get(path)
        assert (status, body) == (200, "OK")
    status, body = await api.get("/api/v2/status")
    assert status == 200 and body["cluster"]["status"] == "disabled" and "version" in body["versionInfo"], body
    status, body = await api.get("/metrics")
    assert status == 200
    assert "watcher_inbox_lag 0.0" in body and 'watcher_outbox{state="pending"} 0.0' in body
    status, body = await api.get("/api/v1/tickets")
    assert (status, body) == (200, {"tickets": []})


# ---------------------------------------------------------------- maintenances and callbacks


@pytest.mark.parametrize(("payload", "message"), [
    ({"client": "nope", "starts_at": "2026-11-02T08:00:00Z", "ends_at": "2026-11-02T09:00:00Z"}, "client"),
    ({"client": "acme", "site": "beta-waw", "starts_at": "2026-11-02T08:00:00Z",
      "ends_at": "2026-11-02T09:00:00Z"}, "site"),
    ({"client": "acme", "starts_at": "2026-11-02T09:00:00Z", "ends_at": "2026-11-02T08:00:00Z"}, "ends_at"),
    ({"client": "acme", "starts_at": "2026-11-02T09:00:00Z", "ends_at": "2026-11-02T09:00:00Z"}, "ends_at"),
    ({"client": "acme", "starts_at": "tomorrow", "ends_at": "2026-11-02T09:00:00Z"}, "starts_at"),
    ({"client": "acme", "starts_at": "2026-11-02T08:00:00Z"}, "ends_at"),
    ({"client": "acme", "starts_at": "2026-11-02T08:00:00Z", "ends_at": "2026-11-02T09:00:00Z",
      "why": "x"}, "unknown field(s): why"),
    pytest.param({"client": ["acme"], "starts_at": "2026-11-02T08:00:00Z", "ends_at": "2026-11-02T09:00:00Z"},
                 "client", id="client-a-list"),
    pytest.param({"client": "acme", "site": {"id": "acme-krk"}, "starts_at": "2026-11-02T08:00:00Z",
                  "ends_at": "2026-11-02T09:00:00Z"}, "site", id="site-an-object"),
])
async def test_maintenance_validation(api: Api, payload: dict[str, Any], message: str) -> None:
    status, body = await api.post("/api/v1/maintenances", payload)
    assert status == 400 and message in body["error"], body
    assert api.stored() == 0


async def test_maintenance_bodies_that_are_not_objects(api: Api) -> None:
    status, body = await api.post("/api/v1/maintenances", raw=b"{not json")
    assert status == 400 and "JSON" in body["error"], body
    status, body = await api.post("/api/v1/maintenances", [])
    assert status == 400 and "object" in body["error"], body


async def test_maintenance_is_201_and_makes_the_outage_planned(api: Api) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    status, body = await api.post("/api/v1/maintenances", {
        "client": "acme", "site": "acme-krk", "starts_at": iso(now - timedelta(minutes=1)),
        "ends_at": iso(now + timedelta(hours=1)), "reason": "Wymiana routera"})
    assert status == 201, body
    assert body["maintenance"] == {"client": "acme", "site": "acme-krk", "starts_at": iso(now - timedelta(minutes=1)),
                                   "ends_at": iso(now + timedelta(hours=1)), "reason": "Wymiana routera",
                                   "id": body["maintenance"]["id"]}
    start = now - timedelta(seconds=5)
    await api.post("/api/v1/events", [probe("https://vpn.acme.example/", start), probe("203.0.113.10:443", start)])

    async def opened() -> list[dict[str, Any]]:
        return (await api.get("/api/v1/tickets?status=open"))[1]["tickets"]

    (tk,) = await api.wait_for(opened, "a planned ticket")
    assert tk["planned"] is True and tk["category"] == "internet", tk
    kinds = {(n["to"], n["kind"]) for n in tk["notifications"]}
    assert kinds == {("jan.kowalski", "planned"), ("ewa.smith", "planned")}, kinds


async def test_callbacks_for_unknown_people(api: Api) -> None:
    status, body = await api.post("/api/v1/people/UNKNOWN/callbacks", {})
    assert status == 404 and "UNKNOWN" in body["error"], body
    status, body = await api.post("/api/v1/people/jan.kowalski/callbacks", {})
    assert status == 404 and "no open ticket" in body["error"], body


# ---------------------------------------------------------------- a ticket's life through the API


async def test_ticket_open_ack_callback_resolve(api: Api) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    status, body = await api.post("/api/v1/events", [probe("https://vpn.acme.example/", start),
                                                     probe("203.0.113.10:443", start)])
    assert status == 200 and body["accepted"] == 2

    async def opened() -> list[dict[str, Any]]:
        return (await api.get("/api/v1/tickets?status=open"))[1]["tickets"]

    (tk,) = await api.wait_for(opened, "an open ticket")
    tid = tk["id"]
    assert tid.startswith("T-")
    assert (tk["client"], tk["site"], tk["entity"], tk["category"]) == (
        "acme", "acme-krk", {"kind": "site", "id": "acme-krk"}, "internet")
    assert tk["title"] == "Brak dostępu do internetu: Biuro Kraków"
    assert (tk["status"], tk["planned"], tk["acknowledged_at"], tk["resolved_at"]) == ("open", False, None, None)
    assert tk["sla"]["tier"] == "gold" and tk["sla"]["react_by"] and tk["sla"]["breached"] is False
    assert sorted(tk["affected"]) == ["ewa.smith", "jan.kowalski"]
    assert {(n["to"], n["kind"], n["state"]) for n in tk["notifications"]} == {
        ("jan.kowalski", "opened", "pending"), ("ewa.smith", "opened", "pending"),
        ("office:acme-krk", "office_check", "pending")}  # delivery is off in this test
    assert tk["event_count"] >= 2

    # the filters
    assert [t["id"] for t in (await api.get("/api/v1/tickets?client=acme"))[1]["tickets"]] == [tid]
    assert (await api.get("/api/v1/tickets?client=beta"))[1]["tickets"] == []
    assert (await api.get("/api/v1/tickets?status=resolved"))[1]["tickets"] == []
    since = (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")  # an offset, an hour earlier
    assert [t["id"] for t in (await api.get(f"/api/v1/tickets?since={quote(since)}"))[1]["tickets"]] == [tid]
    later = iso(datetime.now(UTC) + timedelta(hours=1))
    assert (await api.get(f"/api/v1/tickets?since={later}"))[1]["tickets"] == []
    status, doc = await api.get(f"/api/v1/tickets/{tid}")
    assert status == 200 and doc["id"] == tid

    # acknowledge
    status, doc = await api.post(f"/api/v1/tickets/{tid}/ack", {"by": "agent.anna"})
    assert status == 200, doc
    assert doc["status"] == "acknowledged" and doc["acknowledged_at"] is not None
    assert doc["acknowledged_by"] == "agent.anna"
    assert [t["id"] for t in (await api.get("/api/v1/tickets?status=acknowledged"))[1]["tickets"]] == [tid]
    assert (await api.get("/api/v1/tickets?status=open"))[1]["tickets"] == []

    # callbacks: on the ticket, and the shortcut for a person
    status, doc = await api.post(f"/api/v1/tickets/{tid}/callbacks", {"person": "olek.biuro"})
    assert status == 200, doc
    assert [c["person"] for c in doc["callbacks"]] == ["olek.biuro"]
    status, body = await api.post("/api/v1/people/jan.kowalski/callbacks", {})
    assert status == 200 and body == {"person": "jan.kowalski", "tickets": [tid]}, body
    status, body = await api.post(f"/api/v1/tickets/{tid}/callbacks", {"person": "nobody"})
    assert status == 400 and "person" in body["error"], body
    status, doc = await api.get(f"/api/v1/tickets/{tid}")
    assert [c["person"] for c in doc["callbacks"]] == ["olek.biuro", "jan.kowalski"]
    assert all(c["added_at"] and c["done_at"] is None for c in doc["callbacks"])

    # resolve
    status, doc = await api.post(f"/api/v1/tickets/{tid}/resolve", {"by": "agent.anna"})
    assert status == 200, doc
    assert doc["status"] == "resolved" and doc["resolved_at"] is not None
    assert all(c["done_at"] is None for c in doc["callbacks"]), "still to call: a notice is not a call"
    resolved_to = {n["to"] for n in doc["notifications"] if n["kind"] == "resolved"}
    assert resolved_to == {"olek.biuro", "jan.kowalski", "ewa.smith"}, doc["notifications"]
    assert [t["id"] for t in (await api.get("/api/v1/tickets?status=resolved"))[1]["tickets"]] == [tid]

    # a resolved ticket cannot be acted on
    for action, payload in (("ack", {}), ("resolve", {}), ("callbacks", {"person": "ewa.smith"})):
        status, body = await api.post(f"/api/v1/tickets/{tid}/{action}", payload)
        assert status == 409 and tid in body["error"], (action, body)
    status, body = await api.post("/api/v1/people/ewa.smith/callbacks", {})
    assert status == 404, body
    status, doc = await api.get(f"/api/v1/tickets/{tid}")
    assert doc["status"] == "resolved" and len(doc["callbacks"]) == 2
    status, health = await api.get("/healthz")
    assert health["open_tickets"] == 0
    assert await api.metric("watcher_tickets_opened_total", category="internet") == 1
    assert await api.metric("watcher_tickets_resolved_total", category="internet") == 1


async def open_ticket(api: Api) -> str:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    await api.post("/api/v1/events", [probe("https://vpn.acme.example/", start), probe("203.0.113.10:443", start)])

    async def opened() -> list[dict[str, Any]]:
        return (await api.get("/api/v1/tickets?status=open"))[1]["tickets"]

    (tk,) = await api.wait_for(opened, "an open ticket")
    return str(tk["id"])


async def test_an_op_is_answered_by_its_result_whoever_comes_first(api: Api,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The request handler may resume late (a busy loop): by then the engine has already handled the op
    it stored.  The answer must still be the op's result, not 'no longer open'."""
    tid = await open_ticket(api)
    real_submit = api.rt.ingestor.submit

    async def late_submit(rows: list[Any]) -> list[int | None]:
        seqs = await real_submit(rows)
        seq = seqs[0]
        assert seq is not None

        async def handled() -> bool:
            return api.rt.worker.cursor >= seq

        await api.wait_for(handled, "the engine to handle the op")
        return seqs

    monkeypatch.setattr(api.rt.ingestor, "submit", late_submit)
    status, doc = await api.post(f"/api/v1/tickets/{tid}/ack", {"by": "agent.anna"})
    monkeypatch.undo()
    assert (await api.get(f"/api/v1/tickets/{tid}"))[1]["status"] == "acknowledged"  # it took effect...
    assert status == 200 and doc["status"] == "acknowledged", doc  # ...and the answer must say so
