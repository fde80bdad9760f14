"""watcher behind the real Prometheus and Alertmanager (Debian's ``prometheus`` and
``prometheus-alertmanager``, installed by ``make test``).

1. Prometheus scrapes a ``/metrics`` page the test serves and flips, evaluates an alerting
   rule every second and pushes to watcher's ``POST /api/v2/alerts`` (watcher is named as
   its Alertmanager): both probes of a site failing open one ``internet`` ticket, and the
   resolved alerts Prometheus sends when they recover resolve it; a lone ``InstanceDown``
   opens a ``host`` ticket, and when Prometheus dies the alert's ``endsAt`` expires it.
2. Alertmanager gets alerts posted to its own API and sends its webhook to
   ``/webhooks/alertmanager``: the ticket opens and resolves with no credential, a bearer
   token or basic credentials; a wrong token is answered 403, counted, and opens nothing.

Every program runs on free loopback ports in the test's temp dir and is stopped at the
end; everything waits by polling with a deadline.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, free_port, json_url
from tests.test_e2e import fast_rules

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"

needs_prometheus = pytest.mark.skipif(
    not Path(PROMETHEUS).is_file(),
    reason="Prometheus is not installed (Debian package 'prometheus'; `make test` installs it)")
needs_alertmanager = pytest.mark.skipif(
    not Path(ALERTMANAGER).is_file(),
    reason="Alertmanager is not installed (Debian package 'prometheus-alertmanager'; `make test` installs it)")

PROBES = ("https://vpn.acme.example/", "203.0.113.10:443")
"""The site's probe targets in the inventory: the ``instance`` of each ProbeFailed alert."""

T = TypeVar("T")


# ---------------------------------------------------------------- helpers


def poll(predicate: Callable[[], T], timeout: float, what: str, log: Callable[[], str] | None = None) -> T:
    """``predicate()`` once it is truthy; AssertionError (with the last value and logs) otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}"
                         + (f"\n{log()}" if log else ""))


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one sample in Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(have.get(k) == v for k, v in (labels or {}).items()):
            return float(m.group(4))
    return 0.0


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Peer:
    """A real program (Prometheus, Alertmanager) on a free loopback port, ready on ``/-/ready``.

    ``argv(port)`` is its command line for a port; a port taken between ``free_port`` and
    the bind (by another xdist worker) is retried on a new one.  Output goes to ``log``.
    """

    def __init__(self, name: str, argv: Callable[[int], list[str]], log: Path) -> None:
        self.name, self._argv, self.log = name, argv, log
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return f"--- {self.name} log ---\n{self.log.read_text(errors='replace') if self.log.exists() else ''}"

    def start(self, timeout: float = 30) -> Peer:
        for _attempt in range(3):
            self.port = free_port()
            offset = self.log.stat().st_size if self.log.exists() else 0
            with self.log.open("ab") as logf:
                self.proc = subprocess.Popen(self._argv(self.port), stdout=logf, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if http_get(self.url + "/-/ready", timeout=1)[0] == 200:
                    return self
                time.sleep(0.1)
            else:
                self.stop()
                raise AssertionError(f"{self.name} was not ready within {timeout}s\n{self.logs()}")
            tail = self.log.read_bytes()[offset:].decode(errors="replace")
            if "address already in use" not in tail:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}\n{self.logs()}")
        raise AssertionError(f"{self.name}: no free port after 3 attempts\n{self.logs()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def running(peer: Peer) -> Iterator[Peer]:
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


class Gauges:
    """A ``/metrics`` page in a thread whose gauge values the test sets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        gauges = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = gauges.render().encode() if self.path.startswith("/metrics") else b"not found\n"
                self.send_response(200 if self.path.startswith("/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"gauges-{self.port}", daemon=True)

    def set(self, name: str, labels: dict[str, str], value: float) -> None:
        with self._lock:
            self._series[(name, tuple(sorted(labels.items())))] = value

    def render(self) -> str:
        with self._lock:
            series = sorted(self._series.items())
        lines: list[str] = []
        for (name, labels), value in series:
            if not any(line == f"# TYPE {name} gauge" for line in lines):
                lines.append(f"# TYPE {name} gauge")
            inner = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{inner}}} {value:g}")
        return "\n".join(lines) + "\n"

    def __enter__(self) -> Gauges:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


AGENT_TOKEN = "agent-token-for-reads-0123"
AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}


def write_watcher(tmp_path: Path, receiver: HttpReceiver, auth: dict[str, Any] | None = None) -> Path:
    """watcher.yaml, an inventory of one client with one site (two probes) and the shipped
    rules with their holds shortened to a second (``fast_rules``)."""
    notify = [json_url(receiver)]
    inventory = {"clients": [{
        "id": "acme", "name": "ACME Sp. z o.o.", "sla": "gold", "language": "en",
        "timezone": "Europe/Warsaw", "business_hours": "Mon-Fri 08:00-17:00",
        "admins": notify,
        "sites": [{"id": "acme-krk", "name": "Krakow office",
                   "office_contact": {"name": "Reception", "notify": notify},
                   "probes": [{"type": "http", "target": PROBES[0]}, {"type": "tcp", "target": PROBES[1]}],
                   "match": {"host": "krk-.*"}}],
        "people": [{"id": "jan.kowalski", "name": "Jan Kowalski", "site": "acme-krk", "remote": True,
                    "language": "en", "notify": notify}],
    }]}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory, allow_unicode=True))
    fast_rules(tmp_path)
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text(yaml.safe_dump({
        "rules": "rules.yaml", "inventory": "inventory.yaml",
        "database": f"sqlite:///{tmp_path / 'watcher.db'}",
        "public_url": "http://127.0.0.1:1", "secret_key": "test-secret-key-0123456789",
        "engine_tick": "0.2s", "notify": {"retry_initial": "0.5s", "poll_interval": "0.2s"},
        # with any ingest credential configured, reads need one too: the agents' own
        "auth": {**auth, "api": {"kind": "bearer", "token": AGENT_TOKEN}} if auth else {},
    }))
    return cfg


@contextmanager
def watcher(tmp_path: Path, auth: dict[str, Any] | None = None) -> Iterator[WatcherProcess]:
    with HttpReceiver() as receiver:
        w = WatcherProcess(write_watcher(tmp_path, receiver, auth), free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            yield w
        finally:
            w.stop()


def tickets(w: WatcherProcess, status: str = "") -> list[dict[str, Any]]:
    code, body = w.request("GET", "/api/v1/tickets" + (f"?status={status}" if status else ""),
                           headers=AGENT)
    assert code == 200, body
    return list(body["tickets"])


def ticket_status(w: WatcherProcess, tid: str) -> str:
    return str(w.request("GET", f"/api/v1/tickets/{tid}", headers=AGENT)[1]["status"])


def watcher_metrics(w: WatcherProcess) -> str:
    code, text = w.request("GET", "/metrics")
    assert code == 200
    return str(text)


def both_logs(w: WatcherProcess, *peers: Peer) -> Callable[[], str]:
    return lambda: "\n".join([f"--- watcher log ---\n{w.log.read_text(errors='replace')}",
                              *(p.logs() for p in peers)])


# ---------------------------------------------------------------- Prometheus


def prometheus(tmp_path: Path, target_port: int, watcher_port: int, rules: list[dict[str, Any]],
               alerting_extra: dict[str, Any] | None = None) -> Peer:
    """A Prometheus that scrapes ``127.0.0.1:target_port`` every second, evaluates ``rules``
    every second and names watcher as its Alertmanager (API v2)."""
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump({"groups": [
        {"name": "office", "interval": "1s", "rules": rules}]}))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "alerts.yml")],
        "scrape_configs": [{"job_name": "office", "honor_labels": True,
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
        "alerting": {"alertmanagers": [{"api_version": "v2", "timeout": "5s",
                                        "static_configs": [{"targets": [f"127.0.0.1:{watcher_port}"]}],
                                        **(alerting_extra or {})}]},
    }))
    return Peer("prometheus", lambda port: [
        PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'prometheus-data'}", f"--web.listen-address=127.0.0.1:{port}",
        # A firing alert is re-sent every 2 s with endsAt 4 s ahead (4 x max(resend, eval)).
        "--rules.alert.resend-delay=1s", "--log.level=debug",
    ], tmp_path / "prometheus.log")


def prometheus_alerts(prom: Peer) -> str:
    return http_get(prom.url + "/api/v1/alerts")[1]


@needs_prometheus
def test_prometheus_push_both_probes_failing_is_one_internet_ticket_and_recovery_resolves_it(
        tmp_path: Path) -> None:
    rule = {"alert": "ProbeFailed", "expr": "office_probe_success == 0", "for": "0s",
            "labels": {"severity": "critical"}}
    with Gauges() as gauges, watcher(tmp_path) as w:
        series = [{"client": "acme", "site": "acme-krk", "instance": target} for target in PROBES]
        for labels in series:
            gauges.set("office_probe_success", labels, 1)
        with running(prometheus(tmp_path, gauges.port, w.port, [rule])) as prom:
            logs = both_logs(w, prom)

            # One probe failing: Prometheus pushes it, watcher keeps it, but it is no ticket.
            gauges.set("office_probe_success", series[0], 0)
            poll(lambda: metric_value(watcher_metrics(w), "watcher_events_received_total",
                                      {"source": "prometheus"}) >= 1, 30, "the first ProbeFailed pushed", logs)
            time.sleep(1.5)  # longer than the (shortened) hold of site-internet
            assert tickets(w) == [], "one probe of two failing is no internet ticket"

            # Both failing: one internet ticket for the site.
            gauges.set("office_probe_success", series[1], 0)
            (tk,) = poll(lambda: tickets(w, "open"), 30, "an open internet ticket", logs)
            assert tk["category"] == "internet", tk
            assert tk["entity"] == {"kind": "site", "id": "acme-krk"}, tk
            assert (tk["client"], tk["site"]) == ("acme", "acme-krk"), tk
            assert tk["affected"] == ["jan.kowalski"], tk

            # Prometheus re-sends the firing alerts every second: duplicates, never a second ticket.
            poll(lambda: metric_value(watcher_metrics(w), "watcher_events_received_total",
                                      {"source": "prometheus"}) >= 4, 30, "re-sends of the firing alerts", logs)
            assert [t["id"] for t in tickets(w)] == [tk["id"]]

            # Recovery: Prometheus sends both alerts resolved (endsAt in the past).
            for labels in series:
                gauges.set("office_probe_success", labels, 1)
            poll(lambda: ticket_status(w, tk["id"]) == "resolved", 30, "the ticket resolved", logs)
            assert prom.proc is not None and prom.proc.poll() is None, "resolved while Prometheus still runs"
            assert [t["id"] for t in tickets(w)] == [tk["id"]]
            doc = w.request("GET", f"/api/v1/tickets/{tk['id']}", headers=AGENT)[1]
            assert doc["resolved_at"] is not None
            # ...by the resolved alerts themselves, not by their endsAt expiring.
            resolved = {e["labels"]["instance"] for e in doc["timeline"] if e["what"] == "ProbeFailed resolved"}
            assert resolved == set(PROBES), doc["timeline"]
            assert metric_value(watcher_metrics(w), "watcher_auth_failures_total") == 0


@needs_prometheus
def test_prometheus_instance_down_is_a_host_ticket_that_expires_when_prometheus_dies(tmp_path: Path) -> None:
    """``InstanceDown`` for a host no site claims is a ``host`` ticket (nobody affected), sent
    with a bearer token; when Prometheus is killed its last ``endsAt`` passes and watcher
    resolves the ticket on its own."""
    token = "prom-token-0123456789"
    rule = {"alert": "InstanceDown", "expr": "office_host_up == 0", "for": "0s",
            "labels": {"severity": "critical"}}
    with Gauges() as gauges, watcher(tmp_path, {"prometheus": {"kind": "bearer", "token": token}}) as w:
        host = {"client": "acme", "host": "srv-db1", "instance": "srv-db1:9100"}
        gauges.set("office_host_up", host, 0)
        prom = prometheus(tmp_path, gauges.port, w.port, [rule],
                          {"authorization": {"type": "Bearer", "credentials": token}})
        with running(prom):
            logs = both_logs(w, prom)
            (tk,) = poll(lambda: tickets(w, "open"), 30, "an open host ticket", logs)
            assert tk["category"] == "host", tk
            assert tk["entity"] == {"kind": "host", "id": "srv-db1"}, tk
            assert tk["client"] == "acme" and tk["affected"] == [], tk
            # Re-sends (every 2 s: Prometheus re-sends once LastSentAt + resend delay is strictly
            # before the evaluation) move endsAt forward: the fourth push comes 6 s after the
            # first, whose endsAt (4 s ahead) has passed by then, and the ticket is still open.
            poll(lambda: metric_value(watcher_metrics(w), "watcher_events_received_total",
                                      {"source": "prometheus"}) >= 4, 30, "three re-sends of InstanceDown", logs)
            assert ticket_status(w, tk["id"]) == "open"

            prom.kill()  # no resolved alert will ever come: endsAt (4 s ahead) must expire it
            poll(lambda: ticket_status(w, tk["id"]) == "resolved", 30, "the ticket expired and resolved", logs)
            assert [t["id"] for t in tickets(w)] == [tk["id"]]
            doc = w.request("GET", f"/api/v1/tickets/{tk['id']}", headers=AGENT)[1]
            assert not [e for e in doc["timeline"] if e["what"].endswith("resolved")], doc["timeline"]
            assert metric_value(watcher_metrics(w), "watcher_auth_failures_total", {"path": "prometheus"}) == 0


# ---------------------------------------------------------------- Alertmanager


def alertmanager(tmp_path: Path, watcher_port: int, http_config: dict[str, Any] | None = None) -> Peer:
    """An Alertmanager (no cluster) whose one route sends every group to watcher's webhook."""
    webhook: dict[str, Any] = {"url": f"http://127.0.0.1:{watcher_port}/webhooks/alertmanager",
                               "send_resolved": True}
    if http_config:
        webhook["http_config"] = http_config
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump({
        "route": {"receiver": "watcher", "group_by": ["alertname", "client"],
                  "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1m"},
        "receivers": [{"name": "watcher", "webhook_configs": [webhook]}],
    }))
    return Peer("alertmanager", lambda port: [
        ALERTMANAGER, f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'alertmanager-data'}", f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=", "--log.level=debug",
    ], tmp_path / "alertmanager.log")


def post_alerts(am: Peer, alerts: list[dict[str, Any]]) -> None:
    req = urllib.request.Request(am.url + "/api/v2/alerts", data=json.dumps(alerts).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200, resp.read()


MAIL_DOWN = {"alertname": "MailServerDown", "client": "acme", "host": "mail.acme.example",
             "severity": "critical"}


@needs_alertmanager
@pytest.mark.parametrize("auth", ["none", "bearer", "basic"])
def test_alertmanager_webhook_opens_and_resolves_a_ticket(auth: str, tmp_path: Path) -> None:
    watcher_auth: dict[str, Any] = {}
    http_config: dict[str, Any] | None = None
    if auth == "bearer":
        watcher_auth = {"alertmanager": {"kind": "bearer", "token": "am-token-0123456789"}}
        http_config = {"authorization": {"credentials": "am-token-0123456789"}}
    elif auth == "basic":
        watcher_auth = {"alertmanager": {"kind": "basic", "username": "am", "password": "s3cret pass"}}
        http_config = {"basic_auth": {"username": "am", "password": "s3cret pass"}}
    with watcher(tmp_path, watcher_auth) as w, running(alertmanager(tmp_path, w.port, http_config)) as am:
        logs = both_logs(w, am)
        start = datetime.now(UTC) - timedelta(seconds=2)
        post_alerts(am, [{"labels": MAIL_DOWN, "annotations": {"summary": "IMAP does not answer"},
                          "startsAt": rfc3339(start)}])
        (tk,) = poll(lambda: tickets(w, "open"), 30, "an open mail ticket", logs)
        assert tk["category"] == "mail", tk
        assert tk["entity"] == {"kind": "client", "id": "acme"}, tk
        assert tk["client"] == "acme", tk

        post_alerts(am, [{"labels": MAIL_DOWN, "startsAt": rfc3339(start),
                          "endsAt": rfc3339(datetime.now(UTC))}])
        poll(lambda: ticket_status(w, tk["id"]) == "resolved", 30, "the ticket resolved", logs)
        assert [t["id"] for t in tickets(w)] == [tk["id"]]
        doc = w.request("GET", f"/api/v1/tickets/{tk['id']}", headers=AGENT)[1]
        assert [e["what"] for e in doc["timeline"]] == ["MailServerDown firing", "MailServerDown resolved"], doc
        text = watcher_metrics(w)
        assert metric_value(text, "watcher_events_received_total", {"source": "alertmanager"}) >= 2, text
        assert metric_value(text, "watcher_auth_failures_total", {"path": "alertmanager"}) == 0, text


@needs_alertmanager
def test_alertmanager_with_a_wrong_token_is_refused_counted_and_opens_nothing(tmp_path: Path) -> None:
    watcher_auth = {"alertmanager": {"kind": "bearer", "token": "the-right-token-0123"}}
    with watcher(tmp_path, watcher_auth) as w, \
            running(alertmanager(tmp_path, w.port, {"authorization": {"credentials": "a-wrong-token"}})) as am:
        logs = both_logs(w, am)
        post_alerts(am, [{"labels": MAIL_DOWN, "startsAt": rfc3339(datetime.now(UTC) - timedelta(seconds=2))}])

        poll(lambda: metric_value(watcher_metrics(w), "watcher_auth_failures_total",
                                  {"path": "alertmanager"}) >= 1, 30, "an auth failure counted", logs)
        # Alertmanager saw the refusal: its webhook failed with watcher's 403.
        poll(lambda: metric_value(http_get(am.url + "/metrics")[1], "alertmanager_notifications_failed_total",
                                  {"integration": "webhook"}) >= 1, 15, "Alertmanager counting the failure", logs)
        poll(lambda: "403" in am.log.read_text(errors="replace"), 15, "the 403 in Alertmanager's log", logs)

        time.sleep(1.5)  # MailServerDown has no hold: anything accepted would be a ticket by now
        assert tickets(w) == []
        text = watcher_metrics(w)
        assert metric_value(text, "watcher_events_received_total", {"source": "alertmanager"}) == 0, text

        # Directly: the wrong token is a 403, the right one is accepted (the 403 was the token).
        code, body = w.request("POST", "/webhooks/alertmanager", {"version": "4", "status": "firing", "alerts": []},
                               headers={"Authorization": "Bearer a-wrong-token"})
        assert code == 403, body
        code, body = w.request("POST", "/webhooks/alertmanager", {"version": "4", "status": "firing", "alerts": []},
                               headers={"Authorization": "Bearer the-right-token-0123"})
        assert code == 200, body
