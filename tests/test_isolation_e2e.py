"""What real feeds carry must not stop the service: a running ``watcher serve`` on SQLite and on
PostgreSQL gets the inputs that used to stall its engine (unknown clients, odd numbers, huge
and control-character labels, absurd times, a storm of re-sends, a row it cannot read), and
a normal outage posted after them still opens its ticket and tells its people."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port
from tests.test_e2e import probe, write_config
from watcher.store import InboxRow, Store


def _z(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _alert(labels: dict[str, str], start: datetime, **extra: Any) -> dict[str, Any]:
    return {"source": "api", "status": "firing", "labels": labels, "starts_at": _z(start), **extra}


def test_bad_mix_then_a_normal_outage(tmp_path: Path, db_url: str) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, db_url)
        inv_path = tmp_path / "inventory.yaml"
        inv = yaml.safe_load(inv_path.read_text())
        inv["clients"][0]["shares"] = [{"id": "acme-docs", "site": "acme-krk", "path": "/srv/docs",
                                        "size_bytes": 10**12}]
        inv_path.write_text(yaml.safe_dump(inv, allow_unicode=True))
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            now = datetime.now(UTC).replace(microsecond=0)
            early = now - timedelta(minutes=10)
            accepted = [
                # a client Prometheus knows before the inventory does
                [_alert({"alertname": "DiskFull", "client": "newclient", "severity": "warning"}, early)],
                # an unknown client's probes: their hold expires while the rest goes on
                [_alert({"alertname": "ProbeFailed", "client": "ghost", "instance": "https://vpn.ghost/"}, early)],
                # an exporter's odd total next to a sane sample
                [{"source": "poller", "labels": {"metric": "share_used_bytes", "share": "acme-docs"},
                  "annotations": {"total_bytes": "inf"}, "observed_at": _z(early), "value": 5e11}],
                # a huge site label (longer than the old PostgreSQL column) on a catch-all alert
                [_alert({"alertname": "Weird", "client": "acme", "site": "s" * 200, "severity": "critical"}, early)],
                # a huge label value is cut to size, NUL and other control characters are kept harmless
                [_alert({"alertname": "Odd\x07", "client": "acme\x00", "host": "h" * 5000, "severity": "info"},
                        early)],
                # an SNMP agent, a share and a mailbox nobody has put in the inventory yet
                [_alert({"alertname": "LinkDown", "snmp_agent": "192.0.2.99", "ifIndex": "3"}, early)],
                [{"source": "poller", "labels": {"metric": "share_used_bytes", "share": "nowhere"},
                  "observed_at": _z(early), "value": 1.0}],
                [_alert({"alertname": "MailboxLoginFailed", "mailbox": "who@nowhere.example"}, early)],
            ]
            for body in accepted:
                status, answer = w.request("POST", "/api/v1/events", body)
                assert status == 200, (body, answer)
            refused = {
                "value": [{"labels": {"metric": "share_used_bytes", "share": "acme-docs"}, "value": 1e20}],
                "starts_at": [_alert({"alertname": "X", "client": "acme"}, early)
                              | {"starts_at": "9999-12-31T23:59:59Z"}],
            }
            for field, body in refused.items():
                status, answer = w.request("POST", "/api/v1/events", body)
                assert status == 400 and field in answer["error"], answer
            storm = [_alert({"alertname": "DiskFull", "client": "newclient", "severity": "warning"}, early)] * 300
            status, answer = w.request("POST", "/api/v1/events", storm)
            assert status == 200 and answer["accepted"] == 0, answer
            assert w.request("POST", "/api/v1/people/nobody/callbacks", {})[0] == 404
            assert w.request("POST", "/api/v1/maintenances", {"client": "ghost", "starts_at": _z(now),
                                                              "ends_at": _z(now + timedelta(hours=1))})[0] == 400
            # a row the engine cannot read (written by something else than this version's ingest)
            store = Store(db_url)
            try:
                (bad_seq,) = store.append([InboxRow("event", "api", "bad|1", time.time(), '{"labels": ')])
            finally:
                store.close()

            # ... and then a normal outage
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            firing = [probe("https://vpn.acme.example/", "firing", start), probe("203.0.113.10:443", "firing", start)]
            assert w.request("POST", "/api/v1/events", firing)[1]["accepted"] == 2
            tickets = w.wait_until(
                lambda: [t for t in w.request("GET", "/api/v1/tickets")[1]["tickets"] if t["category"] == "internet"],
                what="the outage's ticket")
            assert tickets[0]["client"] == "acme" and tickets[0]["site"] == "acme-krk"
            smtp.wait_for(3, timeout=30)
            told = {m["To"] for m in smtp.messages}
            assert {"jan.kowalski@acme.example", "ewa.smith@acme.example", "recepcja@acme.example"} <= told
            clients = {t["client"] for t in w.request("GET", "/api/v1/tickets")[1]["tickets"]}
            assert clients == {"acme"}, "nothing unknown opened a ticket"

            unbound = w.request("GET", "/api/v1/unbound")[1]["unbound"]
            named = {(u["label"], u["value"]) for u in unbound}
            assert {("client", "newclient"), ("client", "ghost"), ("site", "s" * 200), ("snmp_agent", "192.0.2.99"),
                    ("share", "nowhere"), ("mailbox", "who@nowhere.example"), ("client", "acme\ufffd")} <= named
            assert all(u["first_seen"] and u["last_seen"] and u["count"] >= 1 for u in unbound)

            q = w.request("GET", "/api/v1/quarantine")[1]
            assert q["total"] == 1 and q["quarantine"][0]["seq"] == bad_seq, q
            assert "cannot be read" in q["quarantine"][0]["reason"]
            log = w.log.read_text()
            assert log.count(f"inbox row {bad_seq} ") == 1, "logged once, with its seq"
            metrics = w.request("GET", "/metrics")[1]
            assert "watcher_quarantine_size 1.0" in metrics and "watcher_inbox_lag_seconds" in metrics
            assert "watcher_unbound_events" in metrics
            assert w.request("GET", "/ready")[0] == 200
            assert w.request("GET", "/healthz")[1]["status"] == "ok"
            agent = requests.Session()  # the agent console shows both lists to a signed-in agent
            assert agent.post(w.url + "/console/login", json={"name": "Anna"}, headers={"Origin": w.url},
                              timeout=10).status_code == 200
            page = agent.get(w.url + "/console/quarantine", timeout=10).text
            assert "cannot be read" in page and str(bad_seq) in page
            page = agent.get(w.url + "/console/unbound", timeout=10).text
            assert "newclient" in page and "who@nowhere.example" in page

            # the inventory owner adds the client: its next alert binds and opens a ticket
            inv["clients"].append({"id": "newclient", "name": "New Client", "sla": "standard", "language": "en",
                                   "timezone": "UTC", "business_hours": "Mon-Fri 08:00-17:00",
                                   "admins": ["json://127.0.0.1:9/admins"]})
            inv_path.write_text(yaml.safe_dump(inv, allow_unicode=True))
            assert w.request("POST", "/api/v1/reload", {})[0] == 200
            later = datetime.now(UTC).replace(microsecond=0)
            again = _alert({"alertname": "DiskFull", "client": "newclient", "severity": "warning"}, later)
            assert w.request("POST", "/api/v1/events", [again])[1]["accepted"] == 1
            w.wait_until(lambda: any(t["client"] == "newclient"
                                     for t in w.request("GET", "/api/v1/tickets")[1]["tickets"]),
                         what="a ticket for the client once the inventory has it")
        finally:
            assert w.stop() == 0
