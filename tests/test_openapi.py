"""The OpenAPI description (``watcher/api/openapi.yaml``, served at ``/api/openapi.yaml``)
against the real service.

* every route the aiohttp app registers is documented, and nothing documented is missing
  from the app;
* schemathesis fuzzes every documented operation of a running ``watcher serve`` (positive
  and negative inputs, malformed bodies too): no input may give a 5xx, and every answer
  must be one the description allows (status code, content type, body schema).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
from watcher.api.auth import sign

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


def test_every_format_of_the_table_is_documented() -> None:
    """Each route of the formats table is an ingest operation of openapi.yaml, answered like
    the others, and its ``auth:`` key is named; no ingest route is documented that the table lacks."""
    from watcher.collectors.formats import TABLE, auth_paths

    doc = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    ingest = doc["paths"]["/api/v1/events"]["post"]
    table_paths = {path for fmt in TABLE for path in fmt.paths}
    for fmt in TABLE:
        for path in fmt.paths:
            op = doc["paths"].get(path, {}).get("post")
            assert op, f"format {fmt.name}: POST {path} is not in openapi.yaml"
            assert "ingest" in op.get("tags", []), f"POST {path}: not tagged ingest"
            assert op.get("requestBody", {}).get("content", {}).get("application/json"), \
                f"POST {path}: no JSON request body described"
            assert op["responses"] == ingest["responses"], f"POST {path}: not answered like the other ingest paths"
            assert op["security"] == ingest["security"], f"POST {path}: not secured like the other ingest paths"
            assert op.get("parameters") == ingest["parameters"], f"POST {path}: no Idempotency-Key"
    documented = {path for path, item in doc["paths"].items() if "ingest" in item.get("post", {}).get("tags", [])}
    assert documented == table_paths, f"documented ingest routes the formats table lacks: {documented - table_paths}"
    for name in auth_paths():
        assert f"`{name}`" in doc["info"]["description"], f"the auth: key {name} is not named in info.description"


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


def _start(tmp: Path, **extra: Any) -> WatcherProcess:
    """``watcher serve`` on a fresh SQLite database, notify and SNMP off."""
    (tmp / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY, allow_unicode=True), encoding="utf-8")
    _fast_rules(tmp / "rules.yaml")
    cfg = tmp / "watcher.yaml"
    cfg.write_text(yaml.safe_dump({
        "rules": "rules.yaml", "inventory": "inventory.yaml", "database": f"sqlite:///{tmp / 'watcher.db'}",
        "public_url": "http://127.0.0.1:1", "secret_key": "test-secret-key-0123456789",
        "engine_tick": "0.2s", "notify": {"enabled": False}, "snmp": {"listen": "off"}, **extra,
    }), encoding="utf-8")
    w = WatcherProcess(cfg, free_port(), tmp / "watcher.log")
    w.start()
    return w


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatcherProcess]:
    w = _start(tmp_path_factory.mktemp("openapi"))
    try:
        _seed(w)
        yield w
    finally:
        w.stop()


AUTH = {"events": {"kind": "bearer", "token": "events-token"},
        "grafana": {"kind": "hmac", "secret": "grafana-secret"},
        "api": {"kind": "basic", "username": "agent", "password": "agent-password"}}
_BASIC = "Basic " + base64.b64encode(b"agent:agent-password").decode()
_GRAFANA = b'{"version": "1", "alerts": []}'


def _auth_cases() -> list[Any]:
    now = int(time.time())
    cases = [
        ("POST", "/api/v1/events", b"[]", {}, 401),
        ("POST", "/api/v1/events", b"[]", {"Authorization": "Bearer wrong"}, 403),
        ("POST", "/api/v1/events", b"[]", {"Authorization": "Basic ZXZlbnRzOng="}, 401),
        ("POST", "/api/v1/events", b"[]", {"Authorization": "Bearer events-token"}, 200),
        ("POST", "/webhooks/grafana", _GRAFANA, {}, 401),
        ("POST", "/webhooks/grafana", _GRAFANA, sign("grafana-secret", _GRAFANA, now - 3600), 401),
        ("POST", "/webhooks/grafana", _GRAFANA, sign("wrong-secret", _GRAFANA, now), 403),
        ("POST", "/webhooks/grafana", _GRAFANA, sign("grafana-secret", _GRAFANA, now), 200),
        ("POST", "/webhooks/alertmanager", b"{}", {}, 400),  # no auth configured for it
        ("POST", "/api/v1/tickets/T-000001/ack", b"", {}, 401),
        ("POST", "/api/v1/tickets/T-000001/ack", b"", {"Authorization": "Basic YWdlbnQ6d3Jvbmc="}, 403),
        ("POST", "/api/v1/tickets/T-000001/ack", b"", {"Authorization": _BASIC}, 404),
        ("POST", "/api/v1/maintenances", b"{}", {}, 401),
        ("POST", "/api/v1/maintenances", b"{}", {"Authorization": _BASIC}, 400),
        ("POST", "/api/v1/reload", b"", {"Authorization": "Bearer events-token"}, 401),
        ("GET", "/api/v1/tickets", None, {}, 401),  # reads name people: they need the api credential too
        ("GET", "/api/v1/tickets", None, {"Authorization": _BASIC}, 200),
    ]
    return [pytest.param(*c, id=f"{c[0]} {c[1]} -> {c[4]}") for c in cases]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatcherProcess]:
    # The built-in probes run here too (their targets do not exist), so /api/v1/stats shows collectors.
    w = _start(tmp_path_factory.mktemp("openapi-auth"), auth=AUTH, collectors={"probes": True})
    try:
        yield w
    finally:
        w.stop()


@pytest.mark.parametrize(("method", "path", "body", "headers", "expected"), _auth_cases())
def test_auth_answers_conform(method: str, path: str, body: bytes | None, headers: dict[str, str],
                              expected: int, auth_server: WatcherProcess) -> None:
    """401 and 403 (and their WWW-Authenticate challenge) as the security schemes describe."""
    resp = requests.request(method, auth_server.url + path, data=body,
                            headers={"Content-Type": "application/json", **headers}, timeout=30)
    assert resp.status_code == expected, resp.text
    if expected == 401:
        assert resp.headers.get("WWW-Authenticate", "").split(" ")[0] in ("Bearer", "Basic", "Watcher-HMAC")
    template = "/api/v1/tickets/{id}/ack" if "/ack" in path else path
    schema[template][method].validate_response(resp)


def test_stats_with_collectors_conform(auth_server: WatcherProcess) -> None:
    resp = requests.get(auth_server.url + "/api/v1/stats", headers={"Authorization": _BASIC}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["collectors"], "the probes should show as collectors"
    schema["/api/v1/stats"]["GET"].validate_response(resp)


@pytest.mark.parametrize("fmt", ["json", "text", "html"])
def test_report_of_the_seeded_month_conforms(fmt: str, server: WatcherProcess) -> None:
    month = server.request("GET", "/api/v1/tickets")[1]["tickets"][0]["opened_at"][:7]
    resp = requests.get(f"{server.url}/api/v1/reports/acme", params={"month": month, "format": fmt}, timeout=30)
    assert resp.status_code == 200, resp.text
    if fmt == "json":
        assert resp.json()["tickets"] >= 3
    schema["/api/v1/reports/{client}"]["GET"].validate_response(resp)


# ---------------------------------------------------------------- known server errors
#
# Real 5xx answers found by this test, reported with their fixes (watcher/api/http.py).  Each
# has its exact input below as a strict xfail: when the fix lands the test XPASSes; then the
# entry moves to FIXED (a plain regression test) and its filter in ``_hits_known_bug`` goes.


@dataclass(frozen=True)
class KnownBug:
    method: str
    path: str
    body: bytes | None
    reason: str

    def param(self) -> Any:
        return pytest.param(self, id=f"{self.method} {self.path.split('?')[0]}: {self.reason.split(':')[0]}",
                            marks=pytest.mark.xfail(strict=True, reason=self.reason))


_MAINTENANCE = b'"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T02:00:00Z"'
KNOWN_BUGS: list[KnownBug] = []  # none open: every input found so far is fixed and listed in FIXED


FIXED = [  # inputs that once gave a 5xx: regressions, must stay < 500
    KnownBug("POST", "/api/v1/silences",
             b'{"matchers": {"host": "=~a{4294967296}"}, "ends_at": "2030-01-01T00:00:00Z"}',
             "repetition too large: re.compile raises OverflowError, only re.error is caught (500)"),
    KnownBug("POST", "/api/v1/silences",
             b'{"matchers": {"host": "=~' + b"(" * 1000 + b"a" + b")" * 1000
             + b'"}, "ends_at": "2030-01-01T00:00:00Z"}',
             "regex nested too deeply: re.compile raises RecursionError (500)"),
    KnownBug("POST", "/api/v1/events", b'[{"labels": {"alertname": "\\ud800"}}]',
             "lone surrogate in a label: fingerprint() raises UnicodeEncodeError outside the try (500)"),
    KnownBug("POST", "/webhooks/alertmanager",
             b'{"version": "4", "alerts": [{"status": "firing", "labels": {"a": "b"}, '
             b'"annotations": {"x": "\\udc00"}, "startsAt": "2030-01-01T00:00:00Z"}]}',
             "lone surrogate in an annotation: the store cannot encode it, the whole group-commit batch "
             "fails (503, for concurrent requests too)"),
    KnownBug("POST", "/api/v1/maintenances",
             b'{"client": "acme", ' + _MAINTENANCE + b', "reason": "\\ud800"}',
             "lone surrogate in an operation: the inbox insert raises UnicodeEncodeError (500)"),
    KnownBug("POST", "/api/v1/events", b"[" * 100_000 + b"]" * 100_000,
             "JSON nested too deeply: json.loads raises RecursionError, not caught (500)"),
    KnownBug("GET", "/api/v1/reports/acme?month=0000-01", None,
             "year 0: report._month_bounds raises ValueError from datetime(0, 1, 1) (500)"),
    KnownBug("GET", "/api/v1/reports/acme?month=9999-12", None,
             "year 9999, December: the month's end datetime(10000, 1, 1) raises ValueError (500)"),
    KnownBug("POST", "/api/v1/tickets/T-000001/ack", b"[" * 100_000 + b"]" * 100_000,
             "JSON nested too deeply: json.loads in _api_guard raises RecursionError (500)"),
    KnownBug("POST", "/api/v1/maintenances", b'{"client": ["acme"], ' + _MAINTENANCE + b"}", "unhashable client"),
    KnownBug("POST", "/api/v1/maintenances", b'{"client": "acme", "site": {}, ' + _MAINTENANCE + b"}",
             "unhashable site"),
    KnownBug("GET", f"/api/v1/tickets?offset={2**63}", None, "offset beyond 64 bits"),
    KnownBug("GET", f"/api/v1/tickets?limit=-{2**63 + 1}", None, "limit below -2**63"),
]


def _hits_known_bug(case: schemathesis.Case) -> bool:
    """Generated inputs that would only rediscover a KNOWN_BUGS entry (none open now)."""
    return False


def _send(session: requests.Session, url: str, method: str, body: bytes | None) -> requests.Response:
    return session.request(method, url, data=body, headers={"Content-Type": "application/json"}, timeout=30)


@pytest.mark.parametrize("bug", [b.param() for b in KNOWN_BUGS]
                         + [pytest.param(b, id=f"fixed: {b.method} {b.reason}") for b in FIXED])
def test_known_server_errors(bug: KnownBug, server: WatcherProcess, session: requests.Session) -> None:
    resp = _send(session, server.url + bug.path, bug.method, bug.body)
    assert resp.status_code < 500, f"{bug.method} {bug.path[:80]}: {resp.status_code} {resp.text[:200]}"
    template = bug.path.split("?")[0].replace("T-000001", "{id}").replace("/reports/acme", "/reports/{client}")
    schema[template][bug.method].validate_response(resp)


def test_a_year_before_1000_does_not_stall_the_engine(tmp_path: Path) -> None:
    """On a server of its own: the failure wedges the engine, and every later operation hangs."""
    w = _start(tmp_path)
    try:
        later = datetime.now(UTC) + timedelta(days=1)
        maintenance = {"client": "acme", "starts_at": _time(later), "ends_at": _time(later + timedelta(hours=1))}
        silence = {"matchers": {"host": "x"}, "starts_at": "0999-01-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}
        for path, body, expected in (("/api/v1/silences", silence, 201), ("/api/v1/maintenances", maintenance, 201)):
            try:
                resp = requests.post(w.url + path, json=body, timeout=5)
            except requests.Timeout:
                pytest.fail(f"POST {path} got no answer in 5 s: the engine is stalled")
            assert resp.status_code == expected, resp.text
    finally:
        w.kill()  # a stalled engine also keeps SIGTERM from stopping the service within 30 s


# ---------------------------------------------------------------- schemathesis

schema = schemathesis.openapi.from_path(OPENAPI)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    database="none",
)


@pytest.fixture(scope="module")
def session(server: WatcherProcess) -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case: schemathesis.Case, server: WatcherProcess, session: requests.Session) -> None:
    """No generated input gives a 5xx, and every answer is one the description allows."""
    if _hits_known_bug(case):
        return
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
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
}

POST_OPERATIONS = sorted(
    (path, method.upper()) for path, item in yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))["paths"].items()
    for method in item if method == "post")


def _malformed_params() -> list[Any]:
    out = []
    for path, method in POST_OPERATIONS:
        for kind in sorted(MALFORMED):
            out.append(pytest.param(path, method, kind, id=f"{method} {path} {kind}"))
    return out


@pytest.mark.parametrize(("path", "method", "kind"), _malformed_params())
def test_malformed_bodies(path: str, method: str, kind: str, server: WatcherProcess,
                          session: requests.Session) -> None:
    """Bodies schemathesis does not send (not JSON at all, or absurd JSON) get a described 4xx."""
    concrete = path.replace("{id}", "T-000001").replace("{person}", "jan.kowalski").replace("{token}", "x.y")
    resp = _send(session, server.url + concrete, method, MALFORMED[kind])
    assert resp.status_code < 500, f"{method} {path} with a {kind} body: {resp.status_code} {resp.text[:300]}"
    schema[path][method].validate_response(resp)


def test_the_service_survived(server: WatcherProcess) -> None:
    """After all of that the service still answers and its seeded tickets are intact."""
    deadline = time.monotonic() + 10
    status, body = server.request("GET", "/healthz")
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        status, body = server.request("GET", "/healthz")
    assert status == 200, body
    assert server.proc is not None and server.proc.poll() is None
    tickets = server.request("GET", "/api/v1/tickets")[1]["tickets"]
    assert {"internet", "host", "other"} <= {t["category"] for t in tickets}
