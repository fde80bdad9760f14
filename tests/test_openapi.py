"""The OpenAPI description (``watcher/api/openapi.yaml``, served at ``/api/openapi.yaml``)
against the real service.

* every route the aiohttp app registers is documented, and nothing documented is missing
  from the app;
* schemathesis fuzzes every documented operation of a running ``watcher serve`` (positive
  and negative inputs, malformed bodies too): no input may give a 5xx, and every answer
  must be one the description allows (status code, content type, body schema).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ROOT
from tests.proc import WatcherProcess
from tests.servers import free_port

OPENAPI = ROOT / "watcher" / "api" / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 30

# ---------------------------------------------------------------- the served description


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item
            if method in HTTP_METHODS}


def _template_regex(path: str) -> re.Pattern[str]:
    """An aiohttp route template (``/webhooks/{name}``) as a regex over concrete paths."""
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def _registered(config: Path) -> set[tuple[str, str]]:
    from watcher.app import build_app
    from watcher.config import load_config

    app = build_app(load_config(config))
    return {(route.method.upper(), route.resource.canonical) for route in app.router.routes()
            if route.resource is not None and route.method.upper() != "HEAD"}


def test_every_route_is_documented_and_nothing_else(server: WatcherProcess) -> None:
    resp = requests.get(server.url + "/api/openapi.yaml", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/yaml")
    doc = yaml.safe_load(resp.text)
    assert doc == yaml.safe_load(OPENAPI.read_text(encoding="utf-8")), "the served file is the shipped one"
    assert str(doc["openapi"]).startswith(("3.0", "3.1"))
    documented = _documented(doc)
    registered = _registered(server.config)
    assert registered, "the app registers no routes?"

    # A route with a path parameter the handler restricts to a few names (``/webhooks/{name}``)
    # may be documented as those concrete paths; any other route must be documented as is.
    undocumented = []
    for method, path in sorted(registered):
        if (method, path) in documented:
            continue
        pattern = _template_regex(path)
        if "{" in path and any(m == method and pattern.match(p) for m, p in documented):
            continue
        undocumented.append(f"{method} {path}")
    assert not undocumented, f"routes missing from openapi.yaml: {undocumented}"

    unknown = [f"{m} {p}" for m, p in sorted(documented)
               if not any(m == rm and (rp == p or _template_regex(rp).match(p)) for rm, rp in registered)]
    assert not unknown, f"openapi.yaml documents routes the app does not have: {unknown}"


def test_every_operation_describes_its_responses() -> None:
    doc = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            assert op.get("operationId"), f"{method.upper()} {path}: no operationId"
            ids.append(op["operationId"])
            assert op.get("responses"), f"{method.upper()} {path}: no responses"
            if method == "post" and not path.startswith("/l/"):
                codes = set(map(str, op["responses"]))
                assert "400" in codes, f"POST {path}: bad input (400) is not described"
    assert len(ids) == len(set(ids)), "operationIds must be unique"


# ---------------------------------------------------------------- a running service

INVENTORY = {"clients": [{
    "id": "acme", "name": "ACME Sp. z o.o.", "sla": "gold", "language": "pl",
    "timezone": "Europe/Warsaw", "business_hours": "Mon-Fri 08:00-17:00",
    "admins": ["json://127.0.0.1:9/admins"],
    "sites": [{"id": "acme-krk", "name": "Biuro Kraków",
               "office_contact": {"name": "Recepcja", "notify": ["json://127.0.0.1:9/office"]},
               "probes": [{"type": "http", "target": "https://vpn.acme.example/"},
                          {"type": "tcp", "target": "203.0.113.10:443"}]}],
    "people": [
        {"id": "jan.kowalski", "name": "Jan Kowalski", "site": "acme-krk", "remote": True,
         "language": "pl", "notify": ["json://127.0.0.1:9/jan"]},
        {"id": "ewa.smith", "name": "Ewa Smith", "site": "acme-krk", "remote": True, "language": "en",
         "notify": ["json://127.0.0.1:9/ewa"]},
    ],
}]}


def _fast_rules(path: Path) -> None:
    """The shipped rules with their holds shortened, so the seeded tickets open at once."""
    doc = yaml.safe_load((ROOT / "rules.yaml").read_text(encoding="utf-8"))
    for rule in doc["rules"]:
        for sig in rule.get("signals", []):
            if "for" in sig:
                sig["for"] = "0s"
        if "resolve_after" in rule:
            rule["resolve_after"] = "1s"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def _time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seed(w: WatcherProcess) -> None:
    """Tickets in every state, with callbacks and owed notifications, for the read endpoints."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    site = {"client": "acme", "site": "acme-krk"}
    events = [
        *({"source": "probe", "labels": {"alertname": "ProbeFailed", **site, "instance": target},
           "starts_at": _time(start)} for target in ("https://vpn.acme.example/", "203.0.113.10:443")),
        {"labels": {"alertname": "InstanceDown", "client": "acme", "host": "acme-srv-01"},
         "starts_at": _time(start)},
        {"labels": {"alertname": "SomethingOdd", "client": "acme", "severity": "warning"},
         "starts_at": _time(start)},
    ]
    status, body = w.request("POST", "/api/v1/events", events)
    assert status == 200 and body["accepted"] == len(events), body
    tickets = w.wait_until(lambda: len(w.request("GET", "/api/v1/tickets")[1]["tickets"]) >= 3
                           and w.request("GET", "/api/v1/tickets")[1]["tickets"], what="seeded tickets")
    by_category = {t["category"]: t for t in tickets}
    assert {"internet", "host", "other"} <= set(by_category), tickets
    assert w.request("POST", "/api/v1/people/jan.kowalski/callbacks", {})[0] == 200
    assert w.request("POST", f"/api/v1/tickets/{by_category['host']['id']}/ack", {"by": "test"})[0] == 200
    assert w.request("POST", f"/api/v1/tickets/{by_category['other']['id']}/resolve", {})[0] == 200
    later = datetime.now(UTC) + timedelta(days=1)
    status, body = w.request("POST", "/api/v1/maintenances", {
        **site, "starts_at": _time(later), "ends_at": _time(later + timedelta(hours=2)), "reason": "test"})
    assert status == 201, body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatcherProcess]:
    tmp = tmp_path_factory.mktemp("openapi")
    (tmp / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY, allow_unicode=True), encoding="utf-8")
    _fast_rules(tmp / "rules.yaml")
    cfg = tmp / "watcher.yaml"
    cfg.write_text(yaml.safe_dump({
        "rules": "rules.yaml", "inventory": "inventory.yaml", "database": f"sqlite:///{tmp / 'watcher.db'}",
        "public_url": "http://127.0.0.1:1", "secret_key": "test-secret-key-0123456789",
        "engine_tick": "0.2s", "notify": {"enabled": False}, "snmp": {"listen": "off"},
    }), encoding="utf-8")
    w = WatcherProcess(cfg, free_port(), tmp / "watcher.log")
    w.start()
    try:
        _seed(w)
        yield w
    finally:
        w.stop()


# ---------------------------------------------------------------- schemathesis

schema = schemathesis.openapi.from_path(OPENAPI)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    database="none",
)

FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def session(server: WatcherProcess) -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_conforms(case: schemathesis.Case, server: WatcherProcess, session: requests.Session) -> None:
    """No generated input gives a 5xx, and every answer is one the description allows."""
    case.call_and_validate(base_url=server.url, session=session, checks=CHECKS, timeout=30)


MALFORMED: dict[str, bytes] = {
    "not-json": b"{this is not json",
    "truncated": b'[{"labels": {"alertname": "X"',
    "bad-utf8": b'[{"labels": {"alertname": "\xff\xfe"}}]',
    "empty": b"",
    "whitespace": b" \n\t ",
    "bare-null": b"null",
    "bare-string": b'"events"',
    "huge-number": b"[1e999999]",
    "huge-int": b"[" + b"9" * 5000 + b"]",
    "lone-surrogate": b'[{"labels": {"alertname": "\\ud800"}}]',
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
}

POST_OPERATIONS = sorted(
    (path, method.upper()) for path, item in yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))["paths"].items()
    for method in item if method == "post")


@pytest.mark.parametrize("kind", sorted(MALFORMED))
@pytest.mark.parametrize(("path", "method"), POST_OPERATIONS, ids=[f"{m} {p}" for p, m in POST_OPERATIONS])
def test_malformed_bodies(path: str, method: str, kind: str, server: WatcherProcess,
                          session: requests.Session) -> None:
    """Bodies schemathesis does not send (they are not JSON at all) get a described 4xx."""
    operation = schema[path][method]
    concrete = path.replace("{id}", "T-000001").replace("{person}", "jan.kowalski").replace("{token}", "x.y")
    resp = session.request(method, server.url + concrete, data=MALFORMED[kind],
                           headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code < 500, f"{method} {path} with a {kind} body: {resp.status_code} {resp.text[:300]}"
    operation.validate_response(resp)


def test_the_service_survived(server: WatcherProcess) -> None:
    """After all of that the service still answers and its seeded tickets are intact."""
    deadline = time.monotonic() + 10
    status, body = server.request("GET", "/healthz")
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        status, body = server.request("GET", "/healthz")
    assert status == 200, body
    assert server.proc is not None and server.proc.poll() is None
